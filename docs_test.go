package keyflow_test

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The repository's documentation must stand alone: every citation of
// docs/langflow-compatibility.md names a section that exists, every relative
// link in a Markdown file leads to a file (and section) that exists, and
// nothing cites a document kept outside the repository. The test walks the
// repository from its root, examples/ included when present (a copy from the
// module proxy holds the library alone).

var (
	// compatCitation is a citation of a section of the compatibility
	// document, from code, tests or another Markdown file.
	compatCitation = regexp.MustCompile(`langflow-compatibility\.md#([A-Za-z0-9_-]+)`)
	// mdLink is a Markdown link or image: [text](target).
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	// outsideCitation is a reference to the design notes kept beside the
	// repository, which its readers do not have. Built from pieces so that
	// this file does not match itself.
	outsideCitation = regexp.MustCompile(strings.Join([]string{
		`langflow-` + `behaviour`,
		`\.\./` + `shared`,
		`reference/[a-z-]+\.` + `md`,
		`reference \x{00a7}`,
	}, "|"))
	// errorLogKey is a log call that files an error under a key other than
	// "err", the one key keyflow logs errors under.
	errorLogKey = regexp.MustCompile(`\.(Debug|Info|Warn|Error|Log)(Context|Attrs)?\(.*"(error|cause)",\s*[A-Za-z.]*[eE]rr\w*\)`)
)

const compatDoc = "docs/langflow-compatibility.md"

// repoFile is one text file of the repository, by its slash path from the root.
type repoFile struct {
	path  string
	lines []string
}

func repoFiles(t *testing.T) []repoFile {
	t.Helper()
	var files []repoFile
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".md", ".js", ".html", ".css", ".sh":
		default:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, repoFile{path: filepath.ToSlash(p), lines: strings.Split(string(b), "\n")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// anchors returns the anchors GitHub gives the headings of the Markdown file
// at p (outside fenced code blocks).
func anchors(t *testing.T, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.FromSlash(p))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level == 0 || level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		a := slug(line[level+1:])
		if n := seen[a]; n > 0 {
			out[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, letters, digits,
// hyphens and underscores kept, spaces made hyphens, the rest dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	tests := map[string]string{
		"API key format":                     "api-key-format",
		"OPTIONS requests":                   "options-requests",
		"Auto-login and the environment key": "auto-login-and-the-environment-key",
		"What `go list -m all` says (v1.2)":  "what-go-list--m-all-says-v12",
	}
	for in, want := range tests {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCompatibilityCitationsExist(t *testing.T) {
	want := anchors(t, compatDoc)
	if len(want) < 10 {
		t.Fatalf("%s: found %d headings; is the file there?", compatDoc, len(want))
	}
	cited := 0
	for _, f := range repoFiles(t) {
		for i, line := range f.lines {
			for _, m := range compatCitation.FindAllStringSubmatch(line, -1) {
				cited++
				if !want[m[1]] {
					t.Errorf("%s:%d: cites %s#%s, which has no such section", f.path, i+1, compatDoc, m[1])
				}
			}
		}
	}
	if cited == 0 {
		t.Error("no citation of the compatibility document found: is the walk reading the repository?")
	}
}

func TestMarkdownLinksResolve(t *testing.T) {
	// The examples module is not part of the library's module zip: from the
	// module cache, links into it cannot be checked.
	_, err := os.Stat(filepath.FromSlash("examples/go.mod"))
	haveExamples := err == nil
	for _, f := range repoFiles(t) {
		if !strings.HasSuffix(f.path, ".md") {
			continue
		}
		fenced := false
		for i, line := range f.lines {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				fenced = !fenced
			}
			if fenced {
				continue
			}
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				p := f.path
				if file != "" {
					p = path.Join(path.Dir(f.path), file)
				}
				if !haveExamples && strings.HasPrefix(p, "examples/") {
					continue
				}
				if _, err := os.Stat(filepath.FromSlash(p)); err != nil {
					t.Errorf("%s:%d: link to %s: %v", f.path, i+1, target, err)
					continue
				}
				if anchor != "" && strings.HasSuffix(p, ".md") && !anchors(t, p)[anchor] {
					t.Errorf("%s:%d: link to %s: %s has no such section", f.path, i+1, target, p)
				}
			}
		}
	}
}

func TestNoCitationOutsideTheRepository(t *testing.T) {
	for _, f := range repoFiles(t) {
		for i, line := range f.lines {
			if m := outsideCitation.FindString(line); m != "" {
				t.Errorf("%s:%d: cites %q, a document outside the repository; cite %s instead", f.path, i+1, m, compatDoc)
			}
		}
	}
}

func TestErrorsAreLoggedUnderErr(t *testing.T) {
	for _, f := range repoFiles(t) {
		if !strings.HasSuffix(f.path, ".go") || strings.HasSuffix(f.path, "_test.go") {
			continue
		}
		for i, line := range f.lines {
			if errorLogKey.MatchString(line) {
				t.Errorf(`%s:%d: an error logged under another key than "err": %s`, f.path, i+1, strings.TrimSpace(line))
			}
		}
	}
}
