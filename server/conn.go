package server

import (
	"context"
	"net"
)

// SendBuffer is the socket send buffer ConnContext gives each connection.
const SendBuffer = 256 << 10

// ConnContext is for http.Server.ConnContext: it sets each TCP
// connection's send buffer to SendBuffer, and returns ctx.
//
// A stream write that makes no progress for Options.WriteTimeout drops its
// client. The kernel wakes a blocked write only once a good part of the
// send buffer has drained, and on its own it grows that buffer up to
// megabytes: a client reading a large snapshot steadily at 100 KB/s then
// shows no progress for over 10 s, and is dropped, again and again, never
// getting its snapshot. With 256 KiB a client is dropped only below about
// 13 KB/s, and a fast client still gets 256 KiB per round trip (5 MB/s at
// 50 ms). `flags serve` sets it; so should a program that serves the
// server with its own http.Server:
//
//	hs := &http.Server{Handler: srv, ConnContext: server.ConnContext}
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(SendBuffer)
	}
	return ctx
}
