// Command flags evaluates, checks, serves and watches flagstream flag
// documents (SPEC §6):
//
//	flags eval  --flags PATH [--flags PATH...] --context JSON [--at RFC3339] [--explain] [FLAG ...]
//	flags lint  [--strict] PATH...
//	flags serve (--flags PATH | --store postgres://...) [--addr HOST:PORT] [--token-file FILE] [--admin-token-file FILE] [--previous-token-file FILE] [--tokens FILE] [--audit-log FILE] [--tls-cert FILE --tls-key FILE]
//	flags watch --url BASE [--token-file FILE] [--poll] [--poll-interval 30s] [--idle-timeout 45s] [--cache FILE] --context JSON [FLAG ...]
//	flags push  --url BASE [--token-file FILE] [--if-match ETAG] [--comment TEXT] FILE
//	flags history --url BASE [--token-file FILE] [--since V] [--kind flag|segment] [--limit N] [KEY]
//	flags switch --url BASE [--token-file FILE] [--if-match V] [--comment TEXT] FLAG on|off
//	flags experiment --url BASE [--token-file FILE] [--json] FLAG
//	flags version
//
// Tokens come from --token-file FILE or $FLAGS_TOKEN (serve: also
// --admin-token-file, $FLAGS_ADMIN_TOKEN); --token T and --admin-token T
// work too, but every user of the machine sees them in the process list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  flags eval  --flags PATH [--flags PATH...] --context JSON [--at RFC3339] [--explain] [FLAG ...]
  flags lint  [--strict] PATH...
  flags serve (--flags PATH | --store postgres://...) [--addr HOST:PORT] [--token-file FILE] [--admin-token-file FILE] [--previous-token-file FILE] [--tokens FILE] [--audit-log FILE] [--tls-cert FILE --tls-key FILE]
  flags watch --url BASE [--token-file FILE] [--poll] [--poll-interval 30s] [--idle-timeout 45s] [--cache FILE] --context JSON [FLAG ...]
  flags push  --url BASE [--token-file FILE] [--if-match ETAG] [--comment TEXT] FILE
  flags history --url BASE [--token-file FILE] [--since V] [--kind flag|segment] [--limit N] [KEY]
  flags switch --url BASE [--token-file FILE] [--if-match V] [--comment TEXT] FLAG on|off
  flags experiment --url BASE [--token-file FILE] [--json] FLAG
  flags version

Tokens come from --token-file FILE or $FLAGS_TOKEN (serve: also --admin-token-file FILE or
$FLAGS_ADMIN_TOKEN). --token T and --admin-token T work too, but every user of the machine
sees them in the process list.
"flags COMMAND -h" (or "flags help COMMAND") describes a command's options.
Exit status: 0 on success and for -h; 2 for a usage error or a refusal; 1 when a server cannot be
reached or fails; flags lint: 1 when it finds problems; flags watch: 1 after FATAL.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is what every subcommand implements: it parses its own
// arguments and returns the process exit status.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// commands are the subcommands by name; version and help, which only print,
// are run's own.
var commands = map[string]command{
	"eval":       noContext(runEval),
	"lint":       noContext(runLint),
	"serve":      runServe,
	"watch":      runWatch,
	"push":       runPush,
	"history":    runHistory,
	"switch":     runSwitch,
	"experiment": runExperiment,
}

// noContext is a command that only reads files and ends on its own, so it
// has no use for the context that stops the others.
func noContext(run func(args []string, stdout, stderr io.Writer) int) command {
	return func(_ context.Context, args []string, stdout, stderr io.Writer) int { return run(args, stdout, stderr) }
}

// run dispatches a subcommand and returns the process exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(ctx, args[1:], stdout, stderr)
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] != "help" { // flags help CMD: the command's own help
			return run(ctx, []string{args[1], "-h"}, stdout, stdout)
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "flags: unknown command %q\n%s", args[0], usage)
	return 2
}

// parseCommand parses a command's arguments with parseInterleaved. When ok
// is false the command stops with code: 0 for -help, 2 for a bad flag (the
// flag package has said what is wrong on fs's output).
func parseCommand(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	positional, err := parseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return nil, 0, false
	case err != nil:
		return nil, 2, false
	}
	return positional, 0, true
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (`flags eval beta --flags f.json` works), which the
// standard flag package alone does not allow. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
