package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/adapt")

// TestCaddyfileAdapt_Golden adapts every Caddyfile in testdata/adapt and
// compares the JSON with the one below its "----------" line (Caddy's
// .caddyfiletest style). `go test -run Golden -update` rewrites them.
func TestCaddyfileAdapt_Golden(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".caddyfiletest"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cf, want, _ := strings.Cut(string(raw), "\n----------\n")
			if *update {
				out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
				if err != nil {
					t.Fatal(err)
				}
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f, []byte(cf+"\n----------\n"+pretty.String()+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !caddytest.CompareAdapt(t, f, cf, "caddyfile", strings.TrimSuffix(want, "\n")) {
				t.Fatalf("%s: adapted JSON differs from the golden file (go test -run Golden -update rewrites it)", f)
			}
		})
	}
}
