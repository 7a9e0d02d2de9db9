package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWrk_CountsEveryUnwantedStatus: a 401 (or a 303) is a failure, never
// throughput; so is a request whose connection is cut before the answer.
func TestWrk_CountsEveryUnwantedStatus(t *testing.T) {
	if wrkPath() == "" {
		t.Skip("wrk is not installed; the harness falls back to its own generator")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Cookie") {
		case "portalgate-courses=ok":
		case "portalgate-courses=cut":
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = c.Close()
			}
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	for cookie, allBad := range map[string]bool{"portalgate-courses=ok": false, "portalgate-courses=no": true, "portalgate-courses=cut": true} {
		r, err := loadWrk(context.Background(), t.TempDir(), 4, time.Second, http.StatusOK, srv.URL, cookie)
		if err != nil {
			t.Fatal(err)
		}
		if r.requests == 0 || allBad && r.failures != r.requests || !allBad && r.failures != 0 {
			t.Fatalf("cookie %s: %d requests, %d failures", cookie, r.requests, r.failures)
		}
	}
}
