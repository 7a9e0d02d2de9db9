package caddymodule

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"github.com/gofrs/flock"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portalgate/portalgate/caddymodule/internal/testkit"
)

func TestGeneratedKey_LinksSurviveRestart(t *testing.T) {
	// A restart keeps the store's state in a file only.
	g := newGateway(t, "store bolt "+filepath.Join(t.TempDir(), "genkey.db"))
	// No signing_key: the gateway generates one and keeps it in Caddy's storage.
	noKey := func() string {
		return strings.Replace(g.caddyfile(), "signing_key test "+testKey, "", 1)
	}
	if err := loadCaddyfile(noKey()); err != nil {
		t.Fatal(err)
	}
	l := g.mint(MintRequest{App: "courses", User: userOf("genkey")})
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := loadCaddyfile(noKey()); err != nil {
		t.Fatal(err)
	}
	if r := g.do(g.client(), http.MethodGet, l.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link signed with the generated key, after restart: %d %s", r.StatusCode, r.Body)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(l.URL[strings.Index(l.URL, "token=")+len("token="):], jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := tok.Header["kid"].(string); !strings.HasPrefix(kid, "gen-") {
		t.Fatalf("signed with key %q, not a generated one", kid)
	}
}

func TestRedeem_RotatedOutKeyIsRefused(t *testing.T) {
	g := newGateway(t, "store memory")
	old := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	stillGood := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	const newKey = "second-signing-secret-0123456789-abcdef"
	rotate := func(keys string) {
		if err := loadCaddyfile(strings.Replace(g.caddyfile(), "signing_key test "+testKey, keys, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Step 1: the new key signs, the old one still verifies.
	rotate("signing_key k2 " + newKey + "\n\t\tsigning_key test " + testKey)
	if r := g.do(g.client(), http.MethodGet, stillGood.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("old link during rotation: %d", r.StatusCode)
	}
	fresh := g.mint(MintRequest{App: "courses", User: userOf("c_rot")})
	// Step 2: the old key is removed; its links die with it.
	rotate("signing_key k2 " + newKey)
	if r := g.do(g.client(), http.MethodGet, old.URL, browser); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("link of a removed key: %d", r.StatusCode)
	}
	if r := g.do(g.client(), http.MethodGet, fresh.URL, browser); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("link of the new key: %d", r.StatusCode)
	}
}

// holdKeyLockEnv names the storage directory in which the helper process
// takes the signing key's lock and holds it until it is killed.
const holdKeyLockEnv = "PORTALGATE_TEST_HOLD_KEY_LOCK"

// TestHelperProcess_HoldsKeyLock is the process killed during a first start:
// it runs only when TestGeneratedKey_KillDuringFirstStartLeavesNoLockToWaitOut
// starts it.
func TestHelperProcess_HoldsKeyLock(t *testing.T) {
	dir := os.Getenv(holdKeyLockEnv)
	if dir == "" {
		t.Skip("started only as the helper process of a key lock test")
	}
	if _, err := lockKey(context.Background(), &certmagic.FileStorage{Path: dir}, generatedKeyPath); err != nil {
		t.Fatal(err)
	}
	fmt.Println("held")
	select {}
}

func TestGeneratedKey_KillDuringFirstStartLeavesNoLockToWaitOut(t *testing.T) {
	dir := t.TempDir()
	// A first start is killed (-9) while it holds the key's lock.
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperProcess_HoldsKeyLock$")
	holder.Env = append(os.Environ(), holdKeyLockEnv+"="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
		_ = holder.Process.Kill()
		t.Fatalf("helper process: %q %v", line, err)
	}
	lockFile := filepath.Join(dir, filepath.FromSlash(generatedKeyPath)+".lock")
	if ok, err := flock.New(lockFile).TryLock(); err != nil || ok {
		t.Fatalf("the helper holds no lock on %s (taken: %v, %v)", lockFile, ok, err)
	}
	if err := holder.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = holder.Wait()
	// A storage lock file as a process killed a moment ago leaves it, dated
	// ahead so that waiting it out would never end.
	st := &certmagic.FileStorage{Path: dir}
	stale, _ := json.Marshal(map[string]time.Time{"created": time.Now(), "updated": time.Now().Add(time.Hour)})
	if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "locks", certmagic.StorageKeys.Safe(generatedKeyPath)+".lock"), stale, 0o600); err != nil {
		t.Fatal(err)
	}

	// The next start generates the key without waiting for either.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Bool
	var id string
	var genErr error
	go func() {
		id, _, _, genErr = generateKey(ctx, st, generatedKeyPath, "gen-", 32)
		done.Store(true)
	}()
	testkit.Eventually(t, 30*time.Second, "the key, after a start that held its lock was killed", done.Load)
	if genErr != nil || !strings.HasPrefix(id, "gen-") {
		t.Fatalf("generated %q, %v", id, genErr)
	}
}

func TestGeneratedKey_InstancesStartingTogetherAgreeOnOneKey(t *testing.T) {
	dir := t.TempDir()
	const instances = 8
	ids := make([]string, instances)
	created := make([]bool, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			var err error
			// Each instance has its own storage value on the shared directory.
			ids[i], _, created[i], err = generateKey(context.Background(), &certmagic.FileStorage{Path: dir}, generatedKeyPath, "gen-", 32)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	makers := 0
	for i := range instances {
		if ids[i] != ids[0] {
			t.Fatalf("instances hold different keys: %q", ids)
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Fatalf("%d instances generated the key, want 1", makers)
	}
}
