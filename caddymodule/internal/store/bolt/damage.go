package bolt

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"
)

// ErrDamaged means the bbolt file is damaged: a page does not read as what
// the file says it is (bytes overwritten, the file cut short).
var ErrDamaged = errors.New("session store file is damaged")

// guarded is the bbolt database with damage contained. bbolt trusts its
// file: a damaged page makes it panic, and a file cut shorter than its
// pages faults when the page is read through the memory map. Here either is
// an error of the one operation, and from then on the store is damaged
// (Ping says so), instead of a crash of the process or a lost request.
type guarded struct {
	*bbolt.DB
	path string
	// damage is the first damage seen.
	damage atomic.Pointer[error]
}

// View, Update and Batch are bbolt's, with damage contained. The function
// is guarded where it runs: Batch runs it on another goroutine.
func (g *guarded) View(fn func(*bbolt.Tx) error) (err error) {
	defer g.contain(&err)()
	return g.DB.View(fn)
}

func (g *guarded) Update(fn func(*bbolt.Tx) error) (err error) {
	defer g.contain(&err)()
	return g.DB.Update(fn)
}

func (g *guarded) Batch(fn func(*bbolt.Tx) error) (err error) {
	defer g.contain(&err)()
	return g.DB.Batch(func(tx *bbolt.Tx) (err error) {
		defer g.contain(&err)()
		return fn(tx)
	})
}

// contain turns a panic or a memory fault of the caller into err. Deferred
// as `defer g.contain(&err)()`: the function it returns is the one that
// recovers.
func (g *guarded) contain(err *error) func() {
	faults := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(faults)
		if p := recover(); p != nil {
			*err = g.damaged(p)
		}
	}
}

// damaged records damage and describes it: which file, and what to do.
func (g *guarded) damaged(why any) error {
	err := fmt.Errorf("%w: %s (%v): stop Caddy, then restore the file from a backup or move it away; "+
		"a new file starts empty and refuses the links issued before it", ErrDamaged, g.path, why)
	g.damage.CompareAndSwap(nil, &err)
	return err
}

// check reads every page of the file, as a start does before serving from
// it: damage is found here, not by a request.
func (g *guarded) check() error {
	return g.View(func(tx *bbolt.Tx) error {
		// A file cut shorter than its pages faults where a page past its
		// end is read, and bbolt's checker reads on a goroutine of its own,
		// where no fault is contained: the size is checked first.
		info, err := os.Stat(g.path)
		if err != nil {
			return err
		}
		if info.Size() < tx.Size() {
			return g.damaged(fmt.Sprintf("the file is %d bytes, its pages need %d: it was cut short", info.Size(), tx.Size()))
		}
		// Read to the end: the checker walks the pages on its own
		// goroutine, which must be done before the transaction is.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = g.damaged(err)
			}
		}
		return first
	})
}

// open opens the file with damage contained: bbolt panics on some damaged
// files while it opens them.
func open(path string, opts *bbolt.Options) (g *guarded, err error) {
	g = &guarded{path: path}
	defer g.contain(&err)()
	g.DB, err = bbolt.Open(path, 0o600, opts)
	return g, err
}
