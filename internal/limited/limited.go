// Package limited reads files that must be small (a flag document, a token
// file) with a bound, so that a huge file named by mistake is refused, not
// read whole into memory. The server's file store and the flags command
// share it.
package limited

import (
	"fmt"
	"io"
	"os"
)

// ReadFile reads the file at path, or fails when it holds more than limit
// bytes; the error then names the file, as the errors of os do.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return data, nil
}
