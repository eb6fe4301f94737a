// Package mib owns SERVICE-MANAGER-MIB: the module text
// (SERVICE-MANAGER-MIB.txt beside this file), the one Go table of every OID
// it defines (objects.go), and the code that puts its objects, and the
// SNMPv2-MIB system group every NMS polls first, on an agent.Tree.
//
// The table is the only place Go code takes these OIDs from: ID constants
// name its rows (SmNodeRole.OID()), and a test parses the MIB with net-snmp
// and fails when the two disagree in either direction, so the module text
// and the served tree cannot drift apart. Another test runs smilint -l 6 on
// the text and requires it to print nothing.
//
// The module sits under net-snmp's playpen arc, netSnmpPlaypen.42
// (1.3.6.1.4.1.8072.9999.9999.42), until the project has an enterprise
// number; arcs for the objects of later revisions are reserved in a comment
// at the top of the MIB.
//
// The package serves state it is given through functions (the node's role
// comes from the election, the directory from package directory); it runs
// no protocol, opens no socket and starts no goroutine. Tools and tests load
// the module with `-M +mib -m SERVICE-MANAGER-MIB` plus the standard IETF
// modules that test/deps/install.sh unpacks.
package mib
