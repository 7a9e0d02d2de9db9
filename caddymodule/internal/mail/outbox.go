package mail

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Outbox is the demo's mailer: it keeps the newest messages in memory for
// staff to read on the dashboard, and sends nothing.
type Outbox struct {
	mu   sync.Mutex
	kept []Kept
	max  int
	now  func() time.Time
}

// Kept is a message in the outbox and when it came.
type Kept struct {
	Message
	At time.Time
}

// NewOutbox returns an outbox keeping the newest max messages.
func NewOutbox(size int, now func() time.Time) *Outbox {
	return &Outbox{max: size, now: now}
}

// Send implements Sender: it keeps m.
func (o *Outbox) Send(_ context.Context, m Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.kept = append(o.kept, Kept{Message: m, At: o.now()})
	if over := len(o.kept) - o.max; over > 0 {
		o.kept = slices.Delete(o.kept, 0, over)
	}
	return nil
}

// Messages returns the kept messages, newest first.
func (o *Outbox) Messages() []Kept {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.kept)
	slices.Reverse(out)
	return out
}
