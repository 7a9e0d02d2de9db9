package caddymodule

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayout_CorePackagesNeverImportCaddy keeps the house as designed: the
// product under internal/ is plain Go and net/http, and this package alone
// is Caddy glue. Any package of internal/ that depends on Caddy, directly or
// through another package, fails the test.
func TestLayout_CorePackagesNeverImportCaddy(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}`, "./internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs, err := exec.Command("go", "list", "./internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if n := len(strings.Fields(string(pkgs))); n < 10 {
		t.Fatalf("go list found %d core packages; the test looks in the wrong place", n)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/caddyserver/caddy") {
			who, _ := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./internal/...").Output()
			t.Fatalf("a core package depends on %s; core packages and their imports:\n%s", dep, who)
		}
	}
}
