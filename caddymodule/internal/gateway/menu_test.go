package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
)

// conflictOnce is a store whose first SetMenu loses to another writer.
type conflictOnce struct {
	store.Store
	lost bool
}

func (c *conflictOnce) SetMenu(ctx context.Context, items []store.MenuItem, version int64) (int64, error) {
	if !c.lost {
		c.lost = true
		other := store.MenuItem{ID: "other", Title: "Other", URL: "https://other.example.com", Open: OpenNewTab, Roles: allRoles}
		if _, err := c.Store.SetMenu(ctx, []store.MenuItem{other}, version); err != nil {
			return 0, err
		}
	}
	return c.Store.SetMenu(ctx, items, version)
}

func TestCustomLinks_ConcurrentEditsBothKeepTheirChange(t *testing.T) {
	st := &conflictOnce{Store: memory.New(time.Now)}
	g := &Gateway{cfg: Config{Directory: st}}
	it := store.MenuItem{Title: "Mine", App: "courses", Open: OpenCurrentTab, Roles: allRoles}
	if err := g.updateMenu(context.Background(), saveMenuItem(it)); err != nil {
		t.Fatalf("adding after a lost race: %v", err)
	}
	m, _ := st.Menu(context.Background())
	if !st.lost || len(m.Items) != 2 || m.Items[0].ID != "other" || m.Items[1].Title != "Mine" {
		t.Fatalf("menu after the race: %+v", m.Items)
	}
}
