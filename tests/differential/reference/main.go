// reference-differential reads image references and prints how github.com/distribution/reference
// (the parser containerd and the kubelet use) reads each one, for signgate's differential test
// (tests/integration/test_reference_differential.py; built by scripts/install-reference-differential).
//
// Input: one JSON string per line on stdin (JSON framing survives any character, newlines
// included). Output: one JSON object per input line, in order, after
// ParseDockerRef(s) (which is ParseNormalizedNamed(s), then the tag dropped beside a digest and
// "latest" added to a bare name):
//
//	{"domain": "docker.io", "path": "library/nginx", "tag": "latest", "digest": ""}
//	{"error": "invalid reference format"}
package main

import (
	"bufio"
	// go-digest accepts a digest only if its hash is linked into the binary, as it is into
	// containerd and the kubelet: without these, every "@sha256:..." would be refused here.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/json"
	"fmt"
	"os"

	"github.com/distribution/reference"
)

type result struct {
	Domain string `json:"domain"`
	Path   string `json:"path"`
	Tag    string `json:"tag"`
	Digest string `json:"digest"`
	Error  string `json:"error,omitempty"`
}

func parse(s string) result {
	named, err := reference.ParseDockerRef(s)
	if err != nil {
		return result{Error: err.Error()}
	}
	out := result{Domain: reference.Domain(named), Path: reference.Path(named)}
	if tagged, ok := named.(reference.Tagged); ok {
		out.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		out.Digest = digested.Digest().String()
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 0, 1<<20), 1<<24)
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	encoder := json.NewEncoder(out)
	line := 0
	for in.Scan() {
		line++
		var s string
		if err := json.Unmarshal(in.Bytes(), &s); err != nil {
			fmt.Fprintf(os.Stderr, "reference-differential: line %d is not a JSON string: %v\n", line, err)
			os.Exit(2)
		}
		if err := encoder.Encode(parse(s)); err != nil {
			fmt.Fprintf(os.Stderr, "reference-differential: %v\n", err)
			os.Exit(2)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "reference-differential: reading stdin: %v\n", err)
		os.Exit(2)
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "reference-differential: %v\n", err)
		os.Exit(2)
	}
}
