//go:build !nodev

package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// privateMariaDB is a MariaDB server of this program's own (its own data directory and
// port), so that stopping it disturbs nobody else's database on the shared one.
type privateMariaDB struct {
	dir  string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

const mariadbd = "/usr/sbin/mariadbd"

func startPrivateMariaDB(ctx context.Context, parent string) (*privateMariaDB, error) {
	if _, err := os.Stat(mariadbd); err != nil {
		return nil, fmt.Errorf("the MariaDB scenario runs a server of its own and needs %s (scripts/ensure-mariadb.sh installs it): %w", mariadbd, err)
	}
	m := &privateMariaDB{dir: filepath.Join(parent, "mariadb")}
	if err := os.MkdirAll(filepath.Join(m.dir, "data"), 0o755); err != nil {
		return nil, err
	}
	m.log = filepath.Join(m.dir, "mariadbd.log")
	// mariadbd runs as mysql and must reach its directory.
	for d := m.dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if info, err := os.Stat(d); err == nil && info.Mode().Perm()&0o005 != 0o005 {
			_ = os.Chmod(d, info.Mode().Perm()|0o005)
		}
		if d == parent {
			break
		}
	}
	if u, err := user.Lookup("mysql"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = os.Chown(m.dir, uid, gid)
		_ = os.Chown(filepath.Join(m.dir, "data"), uid, gid)
	}
	install := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--user=mysql",
		"--datadir="+filepath.Join(m.dir, "data"), "--skip-test-db", "--auth-root-authentication-method=normal")
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %w\n%s", err, out)
	}
	var err error
	if m.port, err = freePort(); err != nil {
		return nil, err
	}
	return m, m.start(ctx)
}

func (m *privateMariaDB) dsn() string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port)
}

func (m *privateMariaDB) start(ctx context.Context) error {
	logFile, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(mariadbd, "--no-defaults", "--user=mysql",
		"--datadir="+filepath.Join(m.dir, "data"), "--socket="+filepath.Join(m.dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(m.dir, "mysqld.pid"), "--bind-address=127.0.0.1", "--port="+strconv.Itoa(m.port),
		"--skip-log-bin", "--innodb-buffer-pool-size=64M", "--max-connections=500")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting mariadbd: %w", err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(m.done) }()
	db, err := sql.Open("mysql", m.dsn())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := db.PingContext(pingCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("mariadbd exited while starting (see %s)", m.log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("mariadbd did not answer on port %d: %v (see %s)", m.port, err, m.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop shuts the server down (SIGTERM, as `service mariadb stop` does) and waits.
func (m *privateMariaDB) stop() {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}
