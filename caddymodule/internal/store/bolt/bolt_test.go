package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/portalgate/portalgate/caddymodule/internal/identity"
	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/bolt"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "sub", "portalgate.db"), now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// reopen closes s (when there is one) and opens the file at path again, as a
// restart does.
func reopen(t *testing.T, s *bolt.Store, path string, clk *clock.Fake) *bolt.Store {
	t.Helper()
	if s != nil {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := bolt.Open(path, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	sess := &store.Session{ID: "s1", User: identity.User{ID: "u1"}, App: "courses",
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	l := storetest.PutLink(t, s, "l1", identity.User{ID: "u1"}, 1, clk.Now(), clk.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, l, sess); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path, clk)
	defer s.Close()
	if _, err := s.GetSession(ctx, "s1"); err != nil {
		t.Fatalf("session lost on reopen: %v", err)
	}
	if _, err := s.Redeem(ctx, l, sess); err != store.ErrLinkUsed {
		t.Fatalf("consumed link forgotten on reopen: %v", err)
	}
}

func TestDirectorySurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	contact := store.Contact{ID: "c1", Email: "ada@example.com", Name: "Ada Lovelace"}
	if err := s.PutContacts(ctx, []store.Contact{contact}); err != nil {
		t.Fatal(err)
	}
	rec := store.LinkRecord{ID: "l1", App: "courses", User: identity.User{ID: "u1"}, Uses: 2,
		IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), Keep: clk.Now().Add(24 * time.Hour)}
	if err := s.RecordLink(ctx, rec); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "s1", User: identity.User{ID: "u1"}, App: "courses",
		CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	l := storetest.PutLink(t, s, "l1", identity.User{ID: "u1"}, 2, clk.Now(), clk.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, l, sess); err != nil {
		t.Fatal(err)
	}
	items := []store.MenuItem{{ID: "m1", Title: "Help", URL: "https://example.com/help", Open: "new_tab", Roles: []identity.Type{identity.Contact}}}
	if _, err := s.SetMenu(ctx, "", items, 0); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, path, clk)
	defer s.Close()
	if cs, err := s.SearchContacts(ctx, store.ContactQuery{}); err != nil || !reflect.DeepEqual(cs, []store.Contact{contact}) {
		t.Fatalf("contacts after reopen = %+v, %v", cs, err)
	}
	rs, err := s.Links(ctx, store.LinkQuery{})
	if err != nil || len(rs) != 1 || rs[0].ID != "l1" || rs[0].Spent != 1 || !rs[0].Keep.Equal(rec.Keep) {
		t.Fatalf("link records after reopen = %+v, %v", rs, err)
	}
	m, err := s.Menu(ctx, "")
	if err != nil || m.Version != 1 || !reflect.DeepEqual(m.Items, items) {
		t.Fatalf("menu after reopen = %+v, %v", m, err)
	}
	if _, err := s.SetMenu(ctx, "", nil, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetMenu at the version before reopen = %v, want ErrConflict", err)
	}
}

// A bolt file emptied under the gateway (truncated to nothing, or a new
// path) holds no grant of the links minted before: they are refused.
func TestOpen_EmptiedFileDoesNotReviveSpentLinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	sess := func(id string) *store.Session {
		return &store.Session{ID: id, User: identity.User{ID: "u1"}, App: "courses",
			CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
	}
	l := storetest.PutLink(t, s, "l1", identity.User{ID: "u1"}, 1, clk.Now(), clk.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, l, sess("s1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	s = reopen(t, nil, path, clk)
	defer s.Close()
	if _, err := s.Redeem(ctx, l, sess("s2")); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("the spent link in the emptied file = %v, want ErrLinkBeforeStore", err)
	}
	s = reopen(t, s, path, clk)
	if _, err := s.Redeem(ctx, l, sess("s3")); !errors.Is(err, store.ErrLinkBeforeStore) {
		t.Fatalf("the file forgot when it began on reopen: %v", err)
	}
	clk.Advance(time.Millisecond)
	l2 := storetest.PutLink(t, s, "l2", identity.User{ID: "u1"}, 1, clk.Now(), clk.Now().Add(time.Hour))
	if _, err := s.Redeem(ctx, l2, sess("s4")); err != nil {
		t.Fatalf("a link issued after the file began: %v", err)
	}
}

// filled returns the path of a closed store file holding n sessions, each
// started by a link.
func filled(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	s := reopen(t, nil, path, clk)
	ids := make([]string, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				ids[i] = fmt.Sprintf("session-%06d-%s", i, strings.Repeat("x", 32))
				sess := &store.Session{ID: ids[i], User: identity.User{ID: fmt.Sprintf("u%d", i%100), Name: "Ada Lovelace"}, App: "courses",
					CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour), IdleAt: clk.Now().Add(time.Hour)}
				l := storetest.PutLink(t, s, fmt.Sprintf("l%d", i), sess.User, 1, clk.Now(), clk.Now().Add(time.Hour))
				if _, err := s.Redeem(context.Background(), l, sess); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// A damaged file (cut short by a full disk or a bad copy, or overwritten in
// the middle) made the start panic, fault (SIGBUS), or start and then
// panic requests. Open refuses it with an error that names the file and
// says what to do.
func TestOpen_DamagedFileIsRefusedWithWhatToDo(t *testing.T) {
	path, _ := filled(t, 6000)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A bbolt file grows ahead of its pages: the damage goes where the
	// pages are, not into the room past them, which holds nothing.
	used := usedSize(t, path)
	if used < 2<<20 {
		t.Fatalf("the file's pages take %d bytes, too few to damage as a big one", used)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"cut to 8 KiB":        func(b []byte) []byte { return b[:8<<10] },
		"cut to 1 MiB":        func(b []byte) []byte { return b[:1<<20] },
		"cut to half":         func(b []byte) []byte { return b[:used/2] },
		"overwritten midfile": func(b []byte) []byte { return overwrite(b, used) },
	} {
		t.Run(name, func(t *testing.T) {
			damaged := filepath.Join(t.TempDir(), "damaged.db")
			if err := os.WriteFile(damaged, damage(bytes.Clone(orig)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := bolt.Open(damaged, time.Now)
			if err == nil {
				_ = s.Close()
				t.Fatal("a damaged file opened")
			}
			if !errors.Is(err, bolt.ErrDamaged) || !strings.Contains(err.Error(), damaged) || !strings.Contains(err.Error(), "backup") {
				t.Fatalf("error = %v; want ErrDamaged naming the file and what to do", err)
			}
		})
	}
}

// overwrite puts garbage over 64 KiB in the middle of a file's pages (the
// first used bytes of b), as a bad disk or a stray write does.
func overwrite(b []byte, used int64) []byte {
	for i := used / 3; i < used/3+64<<10; i++ {
		b[i] = byte(i*7919 + 13)
	}
	return b
}

// usedSize is how many bytes of the bbolt file at path its pages take.
func usedSize(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.View(func(tx *bbolt.Tx) error { n = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// A file damaged while the store runs never crashes a request: the reads
// that meet the damage fail, and the store reports itself damaged.
func TestStore_DamageWhileRunningFailsRequestsNotTheProcess(t *testing.T) {
	path, ids := filled(t, 6000)
	used := usedSize(t, path)
	s, err := bolt.Open(path, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of a sound file: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Written through another descriptor: the store's memory map sees it.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := used / 3
	if _, err := f.WriteAt(overwrite(b, used)[off:off+64<<10], off); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	failed := 0
	for _, id := range ids {
		if _, err := s.GetSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no read met the damage: the test damaged nothing it reads")
	}
	if err := s.Ping(ctx); !errors.Is(err, bolt.ErrDamaged) {
		t.Fatalf("Ping after damage = %v, want ErrDamaged", err)
	}
}

// /metrics counted the sessions by walking the bucket: with a million of
// them one scrape read the whole file. The count is kept with every write,
// and counted once for a file from before it.
func TestCountSessions_KeptWithEveryWriteNotWalked(t *testing.T) {
	path, ids := filled(t, 300)
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	count := func(want int) {
		t.Helper()
		if n, err := s.CountSessions(ctx); err != nil || n != want {
			t.Fatalf("CountSessions = %d, %v; want %d", n, err, want)
		}
	}
	count(300)
	for _, id := range ids[:10] {
		if err := s.DeleteSession(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSession(ctx, ids[0]); err != nil { // gone already: counts nothing
		t.Fatal(err)
	}
	count(290)
	if _, err := s.RevokeUser(ctx, "u50", clk.Now(), clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	count(287)
	s = reopen(t, s, path, clk)
	count(287)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("sessions")) }); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	s = reopen(t, nil, path, clk)
	defer s.Close()
	count(287)
}

// BenchmarkTouchSession_Parallel is the first request of many sessions idle
// for a while, at once: each writes its new idle deadline.
func BenchmarkTouchSession_Parallel(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "touch.db"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	const sessions = 1000
	for i := range sessions {
		sess := &store.Session{ID: fmt.Sprintf("s%04d", i), User: identity.User{ID: "u"}, App: "courses",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleAt: now.Add(time.Hour)}
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := s.TouchSession(ctx, fmt.Sprintf("s%04d", i%sessions), now.Add(time.Hour+time.Duration(i))); err != nil {
				b.Error(err)
			}
		}
	})
}

func TestOpen_FileFromBeforeTheEmailIndexFindsItsContacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "portalgate.db")
	clk := clock.NewFake()
	ctx := context.Background()
	s := reopen(t, nil, path, clk)
	if err := s.PutContacts(ctx, []store.Contact{{ID: "c_ada", Email: "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The file as a version before the index left it.
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("contacts_by_email")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, nil, path, clk)
	t.Cleanup(func() { _ = s.Close() })
	got, err := s.ContactsByEmail(ctx, "ADA@example.com")
	if err != nil || len(got) != 1 || got[0].ID != "c_ada" {
		t.Fatalf("a contact of before the index: %v %v", got, err)
	}
}
