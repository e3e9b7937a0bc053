package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flagstream/flags/internal/testkit"
	"github.com/flagstream/flags/server"
)

func TestReadTokenFile(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
		err           string
	}{
		{"trimmed", "  s3cret \n", []string{"s3cret"}, ""},
		{"crlf", "s3cret\r\n", []string{"s3cret"}, ""},
		{"lines", "old-1\n\n  old-2\n", []string{"old-1", "old-2"}, ""},
		{"empty", " \n\t\n", nil, "no token"},
		{"control character", "s3\x00cret\n", nil, "control character"},
		{"too large", strings.Repeat("x", maxTokenFileBytes+1), nil, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readTokenFile(writeFile(t, "token", tc.content))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("readTokenFile = %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("readTokenFile = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := readTokenFile(writeFile(t, "empty", "")); !errors.Is(err, errNoToken) {
		t.Errorf("empty file: %v, want errNoToken", err)
	}
	if _, err := readTokenFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

// TestWatchTokenNotInProcessList: `flags watch` takes its token from
// --token-file or $FLAGS_TOKEN, so it need not appear in `ps`; --token
// still works; --token with --token-file is an error.
func TestWatchTokenNotInProcessList(t *testing.T) {
	ws := startWatchServer(t, "", watchDoc(t, 3, 0, 0, 0), server.Options{Token: "s3cret"})
	tokenFile := writeFile(t, "token", "s3cret\n")
	for _, tc := range []struct {
		name string
		env  string
		args []string
	}{
		{"--token-file", "", []string{"--token-file", tokenFile}},
		{"$FLAGS_TOKEN", "s3cret", nil},
		{"--token-file over $FLAGS_TOKEN", "wrong", []string{"--token-file", tokenFile}},
		{"--token", "", []string{"--token", "s3cret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FLAGS_TOKEN", tc.env)
			w := startWatch(t, append([]string{"--url", ws.URL, "--context", `{"key":"u1"}`, "a"}, tc.args...)...)
			checkStart(t, w, "stream", 3, []string{evalA0})
			if code := w.Stop(t); code != 0 {
				t.Errorf("exit status = %d, want 0", code)
			}
		})
	}
	t.Run("$FLAGS_TOKEN wrong", func(t *testing.T) {
		t.Setenv("FLAGS_TOKEN", "wrong")
		var stdout, stderr testkit.SyncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), watchWait)
		defer cancel()
		if code := runWatch(ctx, []string{"--url", ws.URL, "--context", `{"key":"u1"}`}, &stdout, &stderr); code != 1 {
			t.Errorf("exit status = %d, want 1 (FATAL: the server refused the token)", code)
		}
	})

	checkRefusals(t, runWatch, []string{"--url", ws.URL, "--context", `{"key":"u1"}`}, []refusal{
		{"both", []string{"--token", "s3cret", "--token-file", tokenFile}, "--token and --token-file are mutually exclusive"},
		{"missing file", []string{"--token-file", filepath.Join(t.TempDir(), "nope")}, "nope"},
		{"empty file", []string{"--token-file", writeFile(t, "empty", "\n")}, "no token"},
		{"two tokens", []string{"--token-file", writeFile(t, "two", "a\nb\n")}, "want one token"},
	})

	var stdout, stderr testkit.SyncBuffer
	if code := runWatch(context.Background(), []string{"-h"}, &stdout, &stderr); code != 0 ||
		!strings.Contains(stderr.String(), "visible to other users") || !strings.Contains(stderr.String(), "-token-file") {
		t.Errorf("flags watch -h = %d, %q; want 0 and help saying --token is visible", code, stderr.String())
	}
}

// TestServeTokensNotInProcessList: `flags serve` takes its tokens from
// --token-file, --admin-token-file and --previous-token-file, or from
// $FLAGS_TOKEN and $FLAGS_ADMIN_TOKEN; a flag and its -file together are an
// error; the help never shows the environment's tokens.
func TestServeTokensNotInProcessList(t *testing.T) {
	doc := writeFile(t, "flags.json", serveDoc)
	tokenFile := writeFile(t, "token", "sdk-from-file\n")
	adminFile := writeFile(t, "admin", "admin-from-file")
	previousFile := writeFile(t, "previous", "old-1\nold-2\n")

	for _, tc := range []struct {
		name       string
		env, admin string // $FLAGS_TOKEN, $FLAGS_ADMIN_TOKEN
		args       []string
		sdk, adm   string // the tokens to expect
		previous   []string
	}{
		{"files", "wrong", "wrong", []string{"--token-file", tokenFile, "--admin-token-file", adminFile, "--previous-token-file", previousFile},
			"sdk-from-file", "admin-from-file", []string{"old-1", "old-2"}},
		{"environment", "sdk-from-env", "admin-from-env", nil, "sdk-from-env", "admin-from-env", nil},
		{"flags", "", "", []string{"--token", "sdk-flag", "--admin-token", "admin-flag"}, "sdk-flag", "admin-flag", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("FLAGS_TOKEN", tc.env)
			t.Setenv("FLAGS_ADMIN_TOKEN", tc.admin)
			url, stop := startServe(t, append([]string{"--flags", doc, "--addr", "127.0.0.1:0"}, tc.args...))
			defer stop()
			status := func(method, path, token string) int {
				t.Helper()
				resp, _ := testkit.Do(t, method, url+path, token, "")
				return resp.StatusCode
			}
			for _, tok := range append([]string{tc.sdk, tc.adm}, tc.previous...) {
				if got := status("GET", "/v1/flags", tok); got != http.StatusOK {
					t.Errorf("GET /v1/flags with %q = %d, want 200", tok, got)
				}
			}
			for _, tok := range []string{"", "wrong"} {
				if got := status("GET", "/v1/flags", tok); got == http.StatusOK {
					t.Errorf("GET /v1/flags with %q = 200, want refused", tok)
				}
			}
			if got := status("DELETE", "/v1/admin/segments/none", tc.sdk); got != http.StatusForbidden {
				t.Errorf("admin DELETE with the SDK token = %d, want 403", got)
			}
			if got := status("DELETE", "/v1/admin/segments/none", tc.adm); got == http.StatusForbidden || got == http.StatusUnauthorized {
				t.Errorf("admin DELETE with the admin token = %d, want it accepted", got)
			}
		})
	}

	checkRefusals(t, runServe, []string{"--flags", doc, "--addr", "127.0.0.1:0"}, []refusal{
		{"token twice", []string{"--token", "a", "--token-file", tokenFile}, "--token and --token-file are mutually exclusive"},
		{"admin token twice", []string{"--admin-token", "a", "--admin-token-file", adminFile}, "--admin-token and --admin-token-file are mutually exclusive"},
		{"empty token file", []string{"--token-file", writeFile(t, "empty", " \n")}, "no token"},
		{"missing admin token file", []string{"--admin-token-file", filepath.Join(t.TempDir(), "nope")}, "nope"},
		{"empty previous token file", []string{"--previous-token-file", writeFile(t, "none", "")}, "--previous-token-file"},
	})

	t.Run("help", func(t *testing.T) {
		t.Setenv("FLAGS_TOKEN", "env-secret")
		t.Setenv("FLAGS_ADMIN_TOKEN", "env-admin-secret")
		var stdout, stderr bytes.Buffer
		code := runServe(context.Background(), []string{"-h"}, &stdout, &stderr)
		help := stderr.String()
		if code != 0 || strings.Contains(help, "env-secret") || strings.Contains(help, "env-admin-secret") {
			t.Errorf("flags serve -h = %d, %q; want 0 and no token from the environment", code, help)
		}
		for _, want := range []string{"-token-file", "-admin-token-file", "-previous-token-file", "visible to other users"} {
			if !strings.Contains(help, want) {
				t.Errorf("flags serve -h does not mention %q:\n%s", want, help)
			}
		}
	})
}
