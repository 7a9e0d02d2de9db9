package memory_test

import (
	"testing"
	"time"

	"github.com/portalgate/portalgate/caddymodule/internal/store"
	"github.com/portalgate/portalgate/caddymodule/internal/store/memory"
	"github.com/portalgate/portalgate/caddymodule/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now func() time.Time) store.Store { return memory.New(now) })
}
