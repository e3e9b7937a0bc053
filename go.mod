module github.com/flagstream/flags

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/r3labs/sse/v2 v2.10.0
	github.com/spaolacci/murmur3 v1.1.0
	gopkg.in/cenkalti/backoff.v1 v1.1.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.13.0 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

// r3labs/sse/v2 asks for a 2019 golang.org/x/net: keep a current one.
require golang.org/x/net v0.63.0 // indirect
