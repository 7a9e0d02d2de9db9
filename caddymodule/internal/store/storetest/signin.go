package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/testkit/clock"
)

// signIn is a sign-in of address from browser, its link living 10 minutes.
func signIn(clk *clock.Fake, browser, address, linkID string) store.SignIn {
	return store.SignIn{
		Browser: browser, Address: address, CodeHash: []byte("hash-of-" + linkID),
		Link: grantOf(clk, linkID, "c_"+address, 1),
	}
}

func put(t *testing.T, s store.Store, si store.SignIn) string {
	t.Helper()
	replaced, err := s.PutSignIn(context.Background(), si)
	if err != nil {
		t.Fatal(err)
	}
	return replaced
}

func try(s store.Store, browser string) (store.SignIn, error) {
	return s.TrySignIn(context.Background(), browser, 5)
}

func testSignInTries(t *testing.T, s store.Store, clk *clock.Fake) {
	want := signIn(clk, "b1", "ada@example.com", "l1")
	put(t, s, want)
	for n := 1; n <= 5; n++ {
		got, err := try(s, "b1")
		if err != nil {
			t.Fatalf("try %d: %v", n, err)
		}
		if got.Tries != n || got.Link.ID != "l1" || !sameGrant(got.Link, want.Link) || string(got.CodeHash) != string(want.CodeHash) {
			t.Fatalf("try %d answered %+v", n, got)
		}
	}
	if _, err := try(s, "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a sixth try: %v, want ErrNotFound", err)
	}
	if _, err := try(s, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a browser that never asked: %v", err)
	}
}

func testSignInReplaced(t *testing.T, s store.Store, clk *clock.Fake) {
	if r := put(t, s, signIn(clk, "b1", "ada@example.com", "l1")); r != "" {
		t.Fatalf("the first sign-in replaced %q", r)
	}
	if r := put(t, s, signIn(clk, "b2", "ada@example.com", "l2")); r != "l1" {
		t.Fatalf("a second sign-in of the address replaced %q, want l1", r)
	}
	if _, err := try(s, "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced sign-in's code: %v", err)
	}
	if _, err := try(s, "b2"); err != nil {
		t.Fatal(err)
	}
	if r := put(t, s, signIn(clk, "b3", "bob@example.com", "l3")); r != "" {
		t.Fatalf("another address's sign-in replaced %q", r)
	}
	// Browser b3 asks again for another address: its sign-in is the new
	// one, and a later sign-in of bob's replaces bob's link without
	// ending the browser's newer sign-in.
	put(t, s, signIn(clk, "b3", "cy@example.com", "l4"))
	if r := put(t, s, signIn(clk, "b5", "bob@example.com", "l5")); r != "l3" {
		t.Fatalf("bob's second sign-in replaced %q, want l3", r)
	}
	if got, err := try(s, "b3"); err != nil || got.Link.ID != "l4" {
		t.Fatalf("the browser's newer sign-in: %+v %v", got, err)
	}
	// A decoy for bob's address is its browser's only: bob's live
	// sign-in stays, and a later one still replaces l5.
	decoy := signIn(clk, "b6", "bob@example.com", "decoy-1")
	decoy.Decoy = true
	if r := put(t, s, decoy); r != "" {
		t.Fatalf("a decoy replaced %q", r)
	}
	if got, err := try(s, "b6"); err != nil || !got.Decoy {
		t.Fatalf("the decoy: %+v %v", got, err)
	}
	if _, err := try(s, "b5"); err != nil {
		t.Fatalf("bob's sign-in after a decoy of his address: %v", err)
	}
	if r := put(t, s, signIn(clk, "b7", "bob@example.com", "l7")); r != "l5" {
		t.Fatalf("bob's next sign-in replaced %q, want l5", r)
	}
}

func testSignInEnds(t *testing.T, s store.Store, clk *clock.Fake) {
	put(t, s, signIn(clk, "b1", "ada@example.com", "l1"))
	put(t, s, signIn(clk, "b2", "bob@example.com", "l2"))
	if err := s.EndSignIn(context.Background(), "b2"); err != nil {
		t.Fatal(err)
	}
	if _, err := try(s, "b2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an ended sign-in: %v", err)
	}
	clk.Advance(time.Hour)
	if _, err := try(s, "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a sign-in past its link's end: %v", err)
	}
	if r := put(t, s, signIn(clk, "b3", "ada@example.com", "l3")); r != "" {
		t.Fatalf("a sign-in after the last one ended replaced %q", r)
	}
	if _, err := s.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := try(s, "b3"); err != nil {
		t.Fatalf("purge ended a live sign-in: %v", err)
	}
}

func testConcurrentSignInTries(t *testing.T, s store.Store, clk *clock.Fake) {
	put(t, s, signIn(clk, "b1", "ada@example.com", "l1"))
	var answered atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := try(s, "b1")
			switch {
			case err == nil:
				answered.Add(1)
			case !errors.Is(err, store.ErrNotFound):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := answered.Load(); n != 5 {
		t.Fatalf("%d of 20 concurrent tries were answered, want 5", n)
	}
}

func testCodeFailures(t *testing.T, s store.Store, clk *clock.Fake) {
	ctx := context.Background()
	until := clk.Now().Add(24 * time.Hour)
	for want := 1; want <= 3; want++ {
		n, err := s.AddCodeFailure(ctx, "ada@example.com", until)
		if err != nil || n != want {
			t.Fatalf("failure %d counted %d, %v", want, n, err)
		}
	}
	if n, err := s.CodeFailures(ctx, "ada@example.com"); err != nil || n != 3 {
		t.Fatalf("CodeFailures = %d, %v, want 3", n, err)
	}
	if n, _ := s.CodeFailures(ctx, "bob@example.com"); n != 0 {
		t.Fatalf("another address has %d", n)
	}
	// A later failure does not prolong the count: it ends when the first said.
	clk.Advance(23 * time.Hour)
	if n, _ := s.AddCodeFailure(ctx, "ada@example.com", clk.Now().Add(24*time.Hour)); n != 4 {
		t.Fatalf("a fourth failure counted %d", n)
	}
	clk.Advance(time.Hour)
	if n, _ := s.CodeFailures(ctx, "ada@example.com"); n != 0 {
		t.Fatalf("past its end the count is %d", n)
	}
	if n, _ := s.AddCodeFailure(ctx, "ada@example.com", clk.Now().Add(24*time.Hour)); n != 1 {
		t.Fatalf("a failure after the end counted %d, want a new count", n)
	}
}
