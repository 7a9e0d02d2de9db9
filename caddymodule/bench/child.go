package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// The bench starts its own binary again as helper processes; these
// variables say which one a process is.
const (
	// hogEnv names the CPU the process keeps busy, spinning.
	hogEnv = "PORTALGATE_BENCH_HOG_CPU"
	// caddyEnv names a Caddyfile the process serves, alone.
	caddyEnv = "PORTALGATE_BENCH_CADDYFILE"
)

// Child is the helper process the bench's binary was started as (the CPU
// hog, or a Caddy of scenario 16), and then never returns; in any other
// process it returns at once. Call it first thing in main.
func Child() {
	hog, isHog := os.LookupEnv(hogEnv)
	path, isCaddy := os.LookupEnv(caddyEnv)
	if !isHog && !isCaddy {
		return
	}
	go endWithParent()
	if isHog {
		runtime.GOMAXPROCS(1)
		cpu, err := strconv.Atoi(hog)
		if err == nil {
			err = pinTo(cpu)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench hog: not pinned to CPU %s: %v\n", hog, err)
		}
		spin()
	}
	err := serveCaddyfile(path)
	fmt.Fprintln(os.Stderr, "bench caddy:", err)
	os.Exit(1)
}

// endWithParent ends a helper process once the bench that started it is
// gone, however it went (on Linux the kernel ends it at once as well).
func endWithParent() {
	parent := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			os.Exit(0)
		}
	}
}

// serveCaddyfile runs Caddy with the Caddyfile at path until killed.
func serveCaddyfile(path string) error {
	cf, err := os.ReadFile(path) //nolint:gosec // the bench's own file, named by the bench
	if err != nil {
		return err
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(cf, nil)
	if err != nil {
		return err
	}
	if err := caddy.Load(cfg, true); err != nil {
		return err
	}
	select {}
}

// startChild starts the bench's binary again as a helper process, with
// the variable env set to value; it dies with the bench.
func startChild(env, value string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self) //nolint:gosec // this very binary
	cmd.Env = append(os.Environ(), env+"="+value)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// stopChild kills a helper process and waits for it.
func stopChild(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// startHog starts the CPU hog: a process that keeps the last CPU this
// process may use busy, spinning, for the whole run, as other work on a shared machine
// would. It returns the process and its CPU.
func startHog() (*exec.Cmd, int, error) {
	cpu := lastCPU()
	cmd, err := startChild(hogEnv, strconv.Itoa(cpu))
	return cmd, cpu, err
}

// spin keeps one CPU busy: a loop the compiler cannot drop.
func spin() {
	n := uint64(1)
	for {
		n = n*6364136223846793005 + 1442695040888963407
		if n == 0 {
			fmt.Println(n)
		}
	}
}
