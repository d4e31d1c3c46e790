package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a control-plane process the cluster started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts binary name of the bin dir with args and extra env,
// its output in Dir/name.log. It is killed when ctx ends or Stop runs.
func (c *Cluster) startProc(ctx context.Context, name string, args, env []string) error {
	log, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	// A process that exits at once (a bad flag) is an error of Start.
	select {
	case <-p.done:
		return fmt.Errorf("%s exited at start (%v):\n%s", name, p.err, c.Log(name, 2000))
	case <-time.After(300 * time.Millisecond):
		return nil
	}
}

// exited returns an error, with the end of its log, when process name has
// exited; nil while it runs.
func (c *Cluster) exited(name string) error {
	for _, p := range c.procs {
		if p.name != name {
			continue
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v\n%s", name, p.err, c.Log(name, 3000))
		default:
		}
	}
	return nil
}

// stop sends SIGTERM and, after a grace period, SIGKILL.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return nil
}

// PeakRSS returns the peak resident set size (VmHWM), in bytes, of every
// running process this process started from the bin dir — the API server
// and etcd that envtest started included — keyed by binary name (summed
// when several processes run one binary).
func (c *Cluster) PeakRSS() map[string]int64 {
	out := map[string]int64{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Dir(exe) != filepath.Clean(c.bin) {
			continue
		}
		st, err := readStatus(pid)
		if err != nil || st["PPid"] != strconv.Itoa(os.Getpid()) {
			continue // another cluster's, from another test process
		}
		if kb, err := strconv.ParseInt(strings.TrimSuffix(st["VmHWM"], " kB"), 10, 64); err == nil {
			out[filepath.Base(exe)] += kb * 1024
		}
	}
	return out
}

// readStatus reads /proc/PID/status into its fields.
func readStatus(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, nil
}
