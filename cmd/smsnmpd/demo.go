package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/node"
)

const demoManagerID = 1000000

// demo runs a manager node on loopback with the demo preset and prints
// commands that work as printed.
func demo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	snmpAddr := fs.String("snmp", "udp:127.0.0.1:1161", "built-in SNMPv2c agent `address` (udp:host:port); with --agentx it is off unless given")
	agentxAddr := fs.String("agentx", "", "register with net-snmp's snmpd at this AgentX `socket` (tcp:host:port or unix:/path)")
	engines := fs.Int("engines", 4, "service engines to start in this process (0..1024)")
	port := fs.Int("rmtp-port", 7730, "UDP `port` of the farm's multicast groups on lo (change it to run two demos)")
	var v verbosity
	fs.Var(&v, "v", "raise the log level one step (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *engines < 0 || *engines > 1024 || *port < 1 || *port > 65535 {
		fmt.Fprintln(stderr, "demo: --engines must be 0..1024 and --rmtp-port 1..65535")
		return exitUsage
	}
	snmpGiven := false
	fs.Visit(func(f *flag.Flag) { snmpGiven = snmpGiven || f.Name == "snmp" })

	cfg := config.Demo()
	// Node ids share one space in the farm; the SEs are 1..N (their
	// smEngineIndex), so the manager takes an id far above them.
	cfg.Node.ID = demoManagerID
	cfg.RMTP.Port = *port
	cfg.SNMP.Listen = config.Addr{}
	if *agentxAddr == "" || snmpGiven {
		a, err := config.ParseAddr(*snmpAddr)
		if err != nil || a.Network() != "udp" {
			fmt.Fprintf(stderr, "demo: --snmp %q: want udp:host:port\n", *snmpAddr)
			return exitUsage
		}
		cfg.SNMP.Listen = a
	}
	if *agentxAddr != "" {
		a, err := config.ParseAddr(*agentxAddr)
		if err != nil || (a.Network() != "tcp" && a.Network() != "unix") {
			fmt.Fprintf(stderr, "demo: --agentx %q: want tcp:host:port or unix:/path\n", *agentxAddr)
			return exitUsage
		}
		cfg.AgentX.Socket = a
	}
	log, err := logging.New(cfg.Log, int(v), stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	// One private directory (mode 0700, random name) for the whole demo:
	// the SNMPv3 engine's state and the demo user's passphrase files, and
	// the control socket. Removed when the demo stops.
	stateDir, err := privateDir()
	if err != nil {
		log.WithError(err).Error("demo cannot start")
		return exitFail
	}
	defer os.RemoveAll(stateDir)
	var v3 demoV3
	if !cfg.SNMP.Listen.IsZero() {
		if v3, err = setupDemoV3(cfg, stateDir); err != nil {
			log.WithError(err).Error("demo cannot start")
			return exitFail
		}
	}
	n, err := node.New(cfg, node.Options{Descr: "smsnmpd " + version + " demo", Version: version, Logger: log})
	if err != nil {
		log.WithError(err).Error("demo cannot start")
		return exitFail
	}
	ses, err := startDemoEngines(cfg, *engines, log)
	defer func() {
		for _, se := range ses {
			stopDemoNode(se)
		}
	}()
	if err != nil {
		log.WithError(err).Error("demo cannot start its engines")
		stopDemoNode(n)
		return exitFail
	}
	sock := filepath.Join(stateDir, "control.sock")
	// One control socket for the whole demo: publish to any of its SEs,
	// look up at its manager.
	if err := n.ListenControl(sock, ses...); err != nil {
		log.WithError(err).Error("demo cannot start")
		stopDemoNode(n)
		return exitFail
	}
	// Print the commands once they work: the manager wins its election
	// after one observation window (a few heartbeats).
	for deadline := time.Now().Add(5 * time.Second); !n.Active() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	// The backup manager (BSM): same farm, a worse election priority, its
	// own built-in agent two ports up. It is warm (it hears every update
	// and reply) and takes over within a second if the SM dies.
	bsm, bsmAddr, err := startDemoBackup(cfg, log)
	if err != nil {
		log.WithError(err).Error("demo cannot start its backup manager")
		stopDemoNode(n)
		return exitFail
	}
	bctx, bcancel := context.WithCancel(context.Background())
	go func() {
		if err := bsm.Run(bctx); err != nil {
			log.WithError(err).Error("the demo's backup manager stopped serving")
		}
	}()
	defer func() {
		bcancel()
		stopDemoNode(bsm)
	}()
	printDemoCommands(stdout, cfg, *engines)
	if v3.user != "" {
		fmt.Fprintf(stdout, "SNMPv3 (user %s, authPriv, passphrases made for this run, files in %s):\n", v3.user, stateDir)
		v3.print(stdout, cfg.SNMP.Listen.Address())
	}
	if bsmAddr != "" {
		fmt.Fprintf(stdout, "The backup manager answers reads too (smNodeRole = backup) and refuses SETs:\n")
		if mibs, ok := mibPath(); ok {
			fmt.Fprintf(stdout, "  snmpget -v2c -c public -M +%s -m SERVICE-MANAGER-MIB %s smNodeRole.0 smViewTerm.0 smEngineCount.0\n", mibs, bsmAddr)
		} else {
			fmt.Fprintf(stdout, "  snmpget -v2c -c public %s 1.3.6.1.4.1.8072.9999.9999.42.1.1.1.0\n", bsmAddr)
		}
	}
	if *engines > 0 {
		exe := exeName()
		fmt.Fprintf(stdout, "Content location (directory) on the same farm:\n")
		fmt.Fprintf(stdout, "  %s publish -socket unix:%s -engine 2 -size 1048576 video/intro.mp4\n", exe, sock)
		fmt.Fprintf(stdout, "  %s lookup -socket unix:%s video/intro.mp4\n", exe, sock)
	}
	fmt.Fprintf(stdout, "What the manager reports of itself (-engine N: SE N; -json: everything):\n")
	fmt.Fprintf(stdout, "  %s status -socket unix:%s\n", exeName(), sock)
	return runUntilSignal(n, log, nil)
}

func exeName() string {
	exe, err := os.Executable()
	if err != nil {
		return "smsnmpd"
	}
	return exe
}

// stopDemoNode stops one of the demo's nodes within the shutdown grace.
func stopDemoNode(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), node.ShutdownGrace)
	defer cancel()
	_ = n.Shutdown(ctx)
}

// privateDir makes the demo's directory (state, passphrases, control socket): mode 0700 with an
// unpredictable name, in $XDG_RUNTIME_DIR (the user's own) when there is
// one, else in the temporary directory. A fixed name in /tmp could be
// taken first by any local user, whose socket would then answer the
// commands the demo prints (the CLI refuses such a socket, see
// internal/control.CheckSocket).
func privateDir() (string, error) {
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		if d, err := os.MkdirTemp(rt, "smsnmpd-demo-"); err == nil {
			return d, nil
		}
	}
	d, err := os.MkdirTemp("", "smsnmpd-demo-")
	if err != nil {
		return "", fmt.Errorf("control socket directory: %w", err)
	}
	return d, nil
}

// startDemoEngines starts SEs 1..count in this process, each with its own
// sockets on the farm's groups, as separate hosts would have. It returns
// those that started, to be stopped, with its error.
func startDemoEngines(mcfg *config.Config, count int, log logrus.FieldLogger) ([]*node.Node, error) {
	var out []*node.Node
	for i := 1; i <= count; i++ {
		c := *mcfg
		c.Node.StateDir = "" // the manager's: SEs in one process keep nothing
		c.SNMP.V3 = config.SNMPv3{}
		c.Node.Role = config.RoleSE
		c.Node.ID = uint32(i)
		c.Node.Level = 1
		c.SE = config.Default().SE
		// Served to the managers only: no agent, no socket.
		c.SNMP.Listen, c.AgentX.Socket, c.Control.Socket = config.Addr{}, config.Addr{}, config.Addr{}
		c.System.Name, c.System.Location = fmt.Sprintf("demo-se%d", i), "loopback"
		se, err := node.New(&c, node.Options{Descr: "smsnmpd " + version + " demo engine", Version: version, Logger: log.WithField("se", i)})
		if err != nil {
			return out, fmt.Errorf("engine %d: %w", i, err)
		}
		out = append(out, se)
	}
	return out, nil
}

// printDemoCommands prints commands that work as printed from any
// directory: the MIB directories are given as absolute paths. Without the
// standard MIB texts (make test or test/deps/install.sh fetch them) names
// cannot be resolved, so the commands fall back to numeric OIDs.
func printDemoCommands(w io.Writer, cfg *config.Config, engines int) {
	fmt.Fprintln(w, "smsnmpd demo is running. Try, in another terminal:")
	if !cfg.SNMP.Listen.IsZero() {
		target := cfg.SNMP.Listen.Address()
		// smSeWeight.0, the SE object the farm examples read and write.
		const weight = "1.3.6.1.4.1.8072.9999.9999.42.1.3.2.0"
		if mibs, ok := mibPath(); ok {
			m := "-M +" + mibs + " -m SERVICE-MANAGER-MIB"
			fmt.Fprintf(w, "  snmpwalk -v2c -c public %s:SNMPv2-MIB %s system\n", m, target)
			fmt.Fprintf(w, "  snmpget -v2c -c public %s %s smNodeRole.0 smNodeLevel.0 smNodeId.0 smEngineCount.0\n", m, target)
			if engines > 0 {
				fmt.Fprintf(w, "  snmptable -v2c -c public -Ci %s %s smEngineTable\n", m, target)
				fmt.Fprintf(w, "  snmpset -v2c -c private %s %s smAllEngines.%s u 7\n", m, target, weight)
				fmt.Fprintf(w, "  snmpget -v2c -c public %s %s smAggregateSum.%s smAggregateCount.%s smEngineProxy.1.%s\n", m, target, weight, weight, weight)
			}
		} else {
			fmt.Fprintf(w, "  snmpwalk -v2c -c public %s 1.3.6.1.2.1.1\n", target)
			fmt.Fprintf(w, "  snmpwalk -v2c -c public %s 1.3.6.1.4.1.8072.9999.9999.42.1.1\n", target)
			if engines > 0 {
				const mib = "1.3.6.1.4.1.8072.9999.9999.42.1"
				fmt.Fprintf(w, "  snmpset -v2c -c private %s %s.6.%s u 7\n", target, mib, weight)
				fmt.Fprintf(w, "  snmpget -v2c -c public %s %s.4.1.%s %s.4.5.%s\n", target, mib, weight, mib, weight)
			}
		}
		fmt.Fprintf(w, "  snmpset -v2c -c private %s 1.3.6.1.2.1.1.4.0 s ops@example.net\n", target)
	}
	if !cfg.AgentX.Socket.IsZero() {
		fmt.Fprintf(w, "  (registered with snmpd at %s: query snmpd's own address the same way)\n", cfg.AgentX.Socket)
	}
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// mibPath finds SERVICE-MANAGER-MIB next to the binary (bin/../mib) or in
// the working directory, and the standard MIB texts beside it in
// .cache/std-mibs (or $SMSNMPD_STD_MIBS).
func mibPath() (string, bool) {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "..", "mib"))
	}
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, filepath.Join(wd, "mib"))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "SERVICE-MANAGER-MIB.txt")); err != nil {
			continue
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		std := os.Getenv("SMSNMPD_STD_MIBS")
		if std == "" {
			std = filepath.Join(filepath.Dir(abs), ".cache", "std-mibs")
		}
		if _, err := os.Stat(filepath.Join(std, "SNMPv2-MIB.mib")); err != nil {
			return "", false
		}
		return abs + ":" + filepath.Clean(std), true
	}
	return "", false
}

// startDemoBackup builds the demo's backup manager: the demo preset with
// another node id, a lower election priority and, when the SM serves the
// built-in agent, its own agent two ports up (AgentX: one worse priority,
// so the shared snmpd routes to the SM).
func startDemoBackup(sm *config.Config, log logrus.FieldLogger) (*node.Node, string, error) {
	c := *sm
	c.Node.ID = sm.Node.ID + 1
	c.Node.Priority = sm.Node.Priority / 2
	if sm.Node.StateDir != "" {
		// An engine ID of its own: SM and BSM never share one.
		c.Node.StateDir = filepath.Join(sm.Node.StateDir, "bsm")
	}
	addr := ""
	if !sm.SNMP.Listen.IsZero() {
		ap, err := netip.ParseAddrPort(sm.SNMP.Listen.Address())
		if err != nil {
			return nil, "", err
		}
		addr = netip.AddrPortFrom(ap.Addr(), ap.Port()+2).String()
		if c.SNMP.Listen, err = config.ParseAddr("udp:" + addr); err != nil {
			return nil, "", err
		}
	}
	n, err := node.New(&c, node.Options{Descr: "smsnmpd " + version + " demo backup manager", Version: version, Logger: log.WithField("node", "bsm")})
	if err != nil {
		return nil, "", err
	}
	return n, addr, nil
}
