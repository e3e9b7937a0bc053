package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"unicode"

	"github.com/flagstream/flags/internal/limited"
)

// maxTokenFileBytes bounds what a token file may hold.
const maxTokenFileBytes = 64 << 10

// tokenOption is a secret given on the command line in one of three ways:
// --NAME-file FILE (the file's content, surrounding whitespace trimmed),
// $ENV, or --NAME T — the last visible to every user of the machine in the
// process list, so the others are preferred. An option given overrides the
// environment; giving both --NAME and --NAME-file is an error.
type tokenOption struct {
	name, env   string
	value, file string
}

// addTokenOption defines --name and --name-file on fs; what names the secret
// in the help ("the SDK token").
func addTokenOption(fs *flag.FlagSet, name, env, what string) *tokenOption {
	t := &tokenOption{name: name, env: env}
	fs.StringVar(&t.value, name, "", what+" (visible to other users in the process list: prefer --"+name+"-file or $"+env+")")
	fs.StringVar(&t.file, name+"-file", "", "read "+what+" from `FILE` (surrounding whitespace trimmed)")
	return t
}

// resolve returns the secret once fs is parsed: from --name-file, --name or
// $env, in that order; "" when none is given.
func (t *tokenOption) resolve(fs *flag.FlagSet) (string, error) {
	set := setFlags(fs)
	switch {
	case set[t.name] && set[t.name+"-file"]:
		return "", fmt.Errorf("--%s and --%s-file are mutually exclusive", t.name, t.name)
	case set[t.name+"-file"]:
		tokens, err := readTokenFile(t.file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", t.name, err)
		}
		if len(tokens) != 1 {
			return "", fmt.Errorf("--%s-file: %s holds %d lines, want one token", t.name, t.file, len(tokens))
		}
		return tokens[0], nil
	case set[t.name]:
		return t.value, nil
	}
	return os.Getenv(t.env), nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// readTokenFile reads a file of tokens, one a line, each trimmed of
// surrounding whitespace; blank lines are skipped. A file without any token,
// or with a token holding a control character, is an error: an empty token
// would silently mean "no token".
func readTokenFile(path string) ([]string, error) {
	data, err := limited.ReadFile(path, maxTokenFileBytes)
	if err != nil {
		return nil, err
	}
	var tokens []string
	for line := range strings.Lines(string(data)) {
		tok := strings.TrimSpace(line)
		if tok == "" {
			continue
		}
		if strings.ContainsFunc(tok, unicode.IsControl) {
			return nil, fmt.Errorf("%s: a token holds a control character", path)
		}
		tokens = append(tokens, tok)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errNoToken)
	}
	return tokens, nil
}

// errNoToken reports a token file without a token.
var errNoToken = errors.New("no token in the file")
