module github.com/flagstream/flags

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/r3labs/sse/v2 v2.10.0
	github.com/spaolacci/murmur3 v1.1.0
	gopkg.in/cenkalti/backoff.v1 v1.1.0
)

// r3labs/sse/v2 asks for a 2019 golang.org/x/net: keep a current one.
require golang.org/x/net v0.63.0 // indirect
