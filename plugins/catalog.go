package plugins

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-plugin"

	"github.com/parleyhq/parley/plugins/sdk"
)

// Builtin describes a plugin compiled into the parley binary.
type Builtin struct {
	Name    string
	Kind    sdk.Kind
	Version string
}

// Command is how the host re-executes itself to run a built-in plugin: Path
// with Args, then the plugin's name. For parley that is
// `<os.Executable()> plugin serve <name>`; tests point it at the test binary.
type Command struct {
	Path string
	Args []string
	Env  []string // added to the host's environment
}

// SelfCommand is the production Command: this executable, `plugin serve`.
func SelfCommand() (Command, error) {
	exe, err := os.Executable()
	if err != nil {
		return Command{}, fmt.Errorf("locate parley executable: %w", err)
	}
	return Command{Path: exe, Args: []string{"plugin", "serve"}}, nil
}

// Entry is one plugin the catalog can run.
type Entry struct {
	Name     string
	Kind     sdk.Kind
	Builtin  bool
	Version  string // built-ins: known statically; external: from Info once running
	Path     string // external: the resolved file inside the plugin dir
	SHA256   string // external: the pinned hex digest
	Selected bool   // the plugin serving its kind
}

// Catalog lists the built-in and external plugins and builds the command
// that starts one.
type Catalog struct {
	dir      string
	self     Command
	env      map[string][]string
	entries  map[string]Entry
	checksum map[string][]byte
	files    map[string]string
}

// ErrUnknownPlugin is returned for a name that is neither built in nor declared.
var ErrUnknownPlugin = errors.New("unknown plugin")

// NewCatalog builds the catalog. builtinEnv adds environment variables per
// built-in (e.g. its configuration). External plugins are checked now: the
// file must exist inside cfg.Dir (symlinks are resolved and must stay
// inside) and be executable; its checksum is verified at every start.
func NewCatalog(cfg Config, builtins []Builtin, self Command, builtinEnv map[string][]string) (*Catalog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Catalog{dir: cfg.Dir, self: self, env: builtinEnv, entries: map[string]Entry{}, checksum: map[string][]byte{}, files: map[string]string{}}
	for _, b := range builtins {
		if _, dup := c.entries[b.Name]; dup {
			return nil, fmt.Errorf("built-in plugin %q declared twice", b.Name)
		}
		c.entries[b.Name] = Entry{Name: b.Name, Kind: b.Kind, Builtin: true, Version: b.Version}
	}
	for _, e := range cfg.External {
		if _, dup := c.entries[e.Name]; dup {
			return nil, fmt.Errorf("external plugin %q: name taken by a built-in plugin", e.Name)
		}
		path, err := ResolveInDir(cfg.Dir, e.File)
		if err != nil {
			return nil, fmt.Errorf("external plugin %q: %w", e.Name, err)
		}
		sum, _ := decodeSHA256(e.SHA256) // validated above
		c.entries[e.Name] = Entry{Name: e.Name, Kind: sdk.Kind(e.Kind), Path: path, SHA256: hex.EncodeToString(sum)}
		c.checksum[e.Name] = sum
		c.files[e.Name] = e.File
	}
	for kind, name := range cfg.Use {
		if name == "" {
			continue
		}
		e, ok := c.entries[name]
		if !ok {
			return nil, fmt.Errorf("plugins.use.%s: %w %q", kind, ErrUnknownPlugin, name)
		}
		if string(e.Kind) != kind {
			return nil, fmt.Errorf("plugins.use.%s: plugin %q is of kind %s", kind, name, e.Kind)
		}
		e.Selected = true
		c.entries[name] = e
	}
	return c, nil
}

// Entries lists the plugins sorted by name.
func (c *Catalog) Entries() []Entry {
	out := make([]Entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns one entry.
func (c *Catalog) Lookup(name string) (Entry, error) {
	e, ok := c.entries[name]
	if !ok {
		return Entry{}, fmt.Errorf("%w %q", ErrUnknownPlugin, name)
	}
	return e, nil
}

// command builds the process for a plugin and, for external plugins, the
// checksum go-plugin verifies before starting it.
func (c *Catalog) command(name string) (*exec.Cmd, *plugin.SecureConfig, error) {
	e, err := c.Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	if e.Builtin {
		args := append(append([]string{}, c.self.Args...), name)
		cmd := exec.Command(c.self.Path, args...)
		cmd.Env = append(append([]string{}, c.self.Env...), c.env[name]...)
		return cmd, nil, nil
	}
	// Resolve again: the directory may have changed since the catalog was built.
	path, err := ResolveInDir(c.dir, c.files[name])
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %q: %w", name, err)
	}
	cmd := exec.Command(path)
	return cmd, &plugin.SecureConfig{Checksum: c.checksum[name], Hash: sha256.New()}, nil
}

// ErrOutsideDir is returned for a plugin file that resolves outside the
// plugin directory.
var ErrOutsideDir = errors.New("resolves outside the plugin directory")

// ResolveInDir resolves file (relative to dir) through any symlinks and
// returns its absolute path if it is a regular, executable file inside dir.
func ResolveInDir(dir, file string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("no plugin directory configured")
	}
	if filepath.IsAbs(file) {
		return "", fmt.Errorf("file %q: %w", file, ErrOutsideDir)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("plugin dir: %w", err)
	}
	root, err = filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("plugin dir: %w", err)
	}
	path, err := filepath.EvalSymlinks(filepath.Join(root, file))
	if err != nil {
		return "", fmt.Errorf("file %q: %w", file, err)
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("file %q (%s): %w", file, path, ErrOutsideDir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("file %q: %w", file, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("file %q is not a regular file", file)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("file %q is not executable", file)
	}
	return path, nil
}

// HashFile returns the hex sha256 of a file, the value to declare for an
// external plugin (`parley plugin hash FILE`).
func HashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
