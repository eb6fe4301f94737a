// Package config owns smsnmpd's configuration: the Config struct (one TOML
// file per process), its defaults (Default, and the Demo preset; a key that
// a library defaults too takes the library's own default, from rmtp's
// DefaultConfig, fanout's DefaultCoordinatorConfig and so on), strict
// loading (Load, Parse, Check) and validation (Config.Validate).
//
// Strict means: an unknown key (including a case-only mismatch, which the
// TOML library would silently accept), a value of the wrong type and a value
// outside its documented range are all errors, each naming the file, the
// line where it is known and the dotted key, in compiler style
// ("etc/se1.toml:12: snmp.lisen: unknown key: did you mean \"snmp.listen\"?").
// Errors are typed (*Error, Errors, ErrorKind and the ErrXxx sentinels) so
// that callers branch with errors.Is / errors.As.
//
// Secrets (SNMP communities) are held in Secret, which never prints its
// value; error messages never contain one. Key files are configured by path
// only: this package never reads them (CheckKeyFile only stats one).
//
// It does not own: applying the config (cmd/smsnmpd wires it into the
// packages), reloading (the caller re-runs Load on SIGHUP and applies what
// may change at run time), or logging (package logging).
package config
