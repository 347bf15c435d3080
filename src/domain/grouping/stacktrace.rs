//! Stack trace text parsing: turns Python, Node.js/V8, Java/JVM, Go and Ruby traces into
//! frames (always oldest call first, the crashing frame last) plus the exception named in the
//! trace, and decides whether a frame belongs to the application or to a library/runtime.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::event::Frame;

/// Traces deeper than this are almost always runaway recursion; the newest frames are the
/// ones that say where it crashed.
const MAX_FRAMES: usize = 500;

/// Real frame and header lines are short; longer lines are clipped so that hostile input
/// cannot make the capturing regex engines crawl over megabytes.
const MAX_LINE_BYTES: usize = 8192;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedStack {
    pub frames: Vec<Frame>,
    pub exception_type: Option<String>,
    pub exception_value: Option<String>,
    /// The platform whose trace format was recognised ("python", "node", "java", "go", "ruby").
    pub platform: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Python,
    Node,
    Java,
    Go,
    Ruby,
}

impl Format {
    const ALL: [Format; 5] = [
        Format::Python,
        Format::Node,
        Format::Java,
        Format::Go,
        Format::Ruby,
    ];

    fn newest_first(self) -> bool {
        self != Format::Python
    }

    fn platform(self) -> &'static str {
        match self {
            Format::Python => "python",
            Format::Node => "node",
            Format::Java => "java",
            Format::Go => "go",
            Format::Ruby => "ruby",
        }
    }
}

/// A frame or header pattern behind a cheap check of what it needs literally, so the regex
/// engines only see lines that may match (a trace has dozens of lines, each tried against
/// several formats). The tests hold every check to its pattern.
struct Guarded {
    needs: fn(&str) -> bool,
    re: Regex,
}

impl Guarded {
    fn new(needs: fn(&str) -> bool, pattern: &str) -> Guarded {
        Guarded {
            needs,
            re: Regex::new(pattern).expect("stack trace pattern compiles"),
        }
    }

    fn is_match(&self, line: &str) -> bool {
        (self.needs)(line) && self.re.is_match(line)
    }

    fn captures<'l>(&self, line: &'l str) -> Option<regex::Captures<'l>> {
        if (self.needs)(line) {
            self.re.captures(line)
        } else {
            None
        }
    }
}

/// What the Node and Java frame patterns start with: `^\s*at\s+`.
fn starts_with_at(line: &str) -> bool {
    line.trim_start()
        .strip_prefix("at")
        .is_some_and(|r| r.starts_with(char::is_whitespace))
}

static PY_HEADER: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        |l| l.trim_start().starts_with("Traceback ("),
        r"^\s*Traceback \(most recent call last\):\s*$",
    )
});

/// The reference for `python_frame_line`, which reads these lines by hand; the tests hold
/// the two to the same answers.
#[cfg(test)]
static PY_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*File "(?P<file>[^"]+)", line (?P<line>[0-9]+)(?:, in (?P<func>.+?))?\s*$"#)
        .expect("Python frame pattern compiles")
});

/// `at fn (file:line:col)`, including `async fn`, `new Foo` and `file://` URLs.
static NODE_FRAME: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        starts_with_at,
        r"^\s*at\s+(?P<func>.+?)\s+\((?P<file>.+):(?P<line>[0-9]+):(?P<col>[0-9]+)\)\s*$",
    )
});

/// `at file:line:col`: an anonymous function.
static NODE_ANON_FRAME: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        starts_with_at,
        r"^\s*at\s+(?P<file>.+):(?P<line>[0-9]+):(?P<col>[0-9]+)\s*$",
    )
});

/// `at fn (index 0)`, `at fn (<anonymous>)`, `at fn (native)`: built-ins without a location.
static NODE_BUILTIN_FRAME: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        starts_with_at,
        r"^\s*at\s+(?P<func>.+?)\s+\((?P<what>[^():]*)\)\s*$",
    )
});

/// `at com.acme.Foo.bar(Foo.java:42)`; the name touches the parenthesis, unlike V8's.
/// Logback's packaging suffix (`~[app.jar:1.0]`) is tolerated.
static JAVA_FRAME: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        starts_with_at,
        r"^\s*at\s+(?P<name>[^\s()]+)\((?P<src>[^()]*)\)\s*(?:~?\[[^\]]*\])?\s*$",
    )
});

static GO_LOCATION: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        |l| l.starts_with(char::is_whitespace) && l.contains(".go:"),
        r"^\s+(?P<file>\S.*?\.go):(?P<line>[0-9]+)(?:\s+\+0x[0-9A-Fa-f]+)?\s*$",
    )
});

static GO_GOROUTINE: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        |l| l.starts_with("goroutine "),
        r"^goroutine [0-9]+ \[[^\]]*\]:?\s*$",
    )
});

/// `/app/x.rb:10:in 'save'` (Ruby 3.4 quotes) or `` in `save' `` (older), optionally after
/// `from`, optionally followed by `: message (Type)` on the first line.
static RUBY_FRAME: LazyLock<Guarded> = LazyLock::new(|| {
    Guarded::new(
        |l| l.contains(":in"),
        r"^\s*(?:from\s+)?(?P<file>\S.*?):(?P<line>[0-9]+):in\s+[`'](?P<func>.*?)'(?::\s*(?P<rest>.*))?$",
    )
});

static RUBY_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<value>.*?)\s*\((?P<type>[A-Z][A-Za-z0-9_]*(?:::[A-Z][A-Za-z0-9_]*)*)\)\s*$")
        .expect("Ruby message pattern compiles")
});

/// `ValueError: bad input`, `java.lang.IllegalStateException: boom`, `KeyboardInterrupt`.
static EXCEPTION_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(?:Exception in thread "[^"]*"\s+|Uncaught\s+)?(?P<type>[\p{L}_$][\p{L}\p{N}_$]*(?:\.[\p{L}_$][\p{L}\p{N}_$]*)*)(?:\s+\[[A-Za-z0-9_]+\])?(?::\s*(?P<value>.*))?$"#,
    )
    .expect("exception line pattern compiles")
});

/// A Python frame line, `File "<file>", line <n>[, in <func>]`: exactly what `PY_FRAME`
/// matches, read by hand because Python is the commonest trace and a capturing regex costs
/// about a microsecond a line. Returns (file, line number, function).
fn python_frame_line(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.trim_start().strip_prefix("File \"")?;
    let quote = rest.find('"')?;
    let file = &rest[..quote];
    let rest = rest[quote..].strip_prefix("\", line ")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if file.is_empty() || digits == 0 {
        return None;
    }
    let (number, rest) = rest.split_at(digits);
    if let Some(func) = rest.strip_prefix(", in ") {
        // `.+?` then `\s*$`: the rest without trailing space, but at least one character.
        let trimmed = func.trim_end();
        let func = match func.chars().next() {
            None => return None,
            Some(c) if trimmed.is_empty() => &func[..c.len_utf8()],
            Some(_) => trimmed,
        };
        return Some((file, number, func));
    }
    rest.trim_end().is_empty().then_some((file, number, ""))
}

/// Parses a stack trace in any supported format. Lines that cannot be read are skipped.
pub fn parse(text: &str) -> ParsedStack {
    let lines: Vec<&str> = lines(text).map(clip).collect();
    let Some(format) = detect(&lines) else {
        return ParsedStack::default();
    };

    let (start, end) = block(format, &lines);
    let mut frames = Vec::new();
    let mut first_frame_line = None;
    let mut last_frame_line = None;
    let mut i = start;
    while i < end {
        let (frame, consumed) = match parse_frame_at(&lines, i, end, format) {
            Some((frame, consumed)) => (Some(frame), consumed),
            None => (None, 1),
        };
        if let Some(frame) = frame {
            first_frame_line.get_or_insert(i);
            last_frame_line = Some(i + consumed - 1);
            frames.push(frame);
        }
        i += consumed;
    }

    if format.newest_first() {
        frames.reverse();
    }
    if frames.len() > MAX_FRAMES {
        frames.drain(..frames.len() - MAX_FRAMES);
    }

    let (exception_type, exception_value) = exception(
        format,
        &lines,
        start,
        end,
        first_frame_line,
        last_frame_line,
    );
    ParsedStack {
        frames,
        exception_type,
        exception_value,
        platform: Some(format.platform()),
    }
}

/// What `str::lines` yields (a `\r` before a `\n` dropped, no empty last line), the line ends
/// found by `memchr` many bytes at a time: `str::lines` looked at each character, a tenth of
/// parsing a 20-frame trace.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', text.as_bytes());
    std::iter::from_fn(move || {
        if let Some(end) = ends.next() {
            let line = &text[start..end];
            start = end + 1;
            Some(line.strip_suffix('\r').unwrap_or(line))
        } else if start < text.len() {
            let line = &text[start..];
            start = text.len();
            Some(line)
        } else {
            None
        }
    })
}

/// Parses a list of lines as one trace; when nothing in it looks like a frame, each non-empty
/// line becomes a frame named after its text, so custom stacks still group stably.
pub fn parse_lines(lines: &[String]) -> ParsedStack {
    let mut parsed = parse(&lines.join("\n"));
    if parsed.frames.is_empty() {
        let mut frames: Vec<Frame> = lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(|l| Frame {
                function: l.to_string(),
                ..Frame::default()
            })
            .collect();
        if frames.len() > MAX_FRAMES {
            frames.drain(..frames.len() - MAX_FRAMES);
        }
        parsed.frames = frames;
    }
    parsed
}

const LIBRARY_PATH_MARKERS: &[&str] = &[
    "site-packages",
    "dist-packages",
    "/lib/python",
    "node_modules",
    "node:internal",
    "/usr/lib",
    "/usr/local/lib",
    "<frozen",
    "/gems/",
    "/ruby/",
    "/rubygems/",
    "/usr/local/go/src/",
    "/go/pkg/mod/",
];

/// All of `LIBRARY_PATH_MARKERS` in one pass over a path (a `contains` per marker cost more
/// than the rest of the frame's checks).
static LIBRARY_PATHS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::new(LIBRARY_PATH_MARKERS).expect("the library path markers build")
});

const LIBRARY_MODULE_PREFIXES: &[&str] = &[
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "kotlinx.",
    "scala.",
    "org.springframework.",
    "org.apache.",
];

/// Whether a frame is application code. The client's word wins; otherwise frames in known
/// library, package-manager and runtime locations are not in-app.
pub fn is_in_app(frame: &Frame) -> bool {
    if let Some(in_app) = frame.in_app {
        return in_app;
    }
    let path = if frame.filename.contains('\\') {
        std::borrow::Cow::Owned(frame.filename.replace('\\', "/"))
    } else {
        std::borrow::Cow::Borrowed(frame.filename.as_str())
    };
    if LIBRARY_PATHS.is_match(path.as_ref()) {
        return false;
    }
    // Old Node versions print core modules as bare `internal/...` paths (new ones as
    // `node:internal/...`); a project's own `/app/internal/` directory must not match.
    if path.starts_with("internal/") || path.starts_with("node:") {
        return false;
    }
    let module = frame.module.as_str();
    if module == "runtime" || module.starts_with("runtime/") {
        return false;
    }
    !LIBRARY_MODULE_PREFIXES
        .iter()
        .any(|p| module.starts_with(p))
}

/// Picks the format by its header, else by which format's frames are most common. `None`
/// means nothing in the text looks like a trace.
fn detect(lines: &[&str]) -> Option<Format> {
    let mut counts = [0usize; Format::ALL.len()];
    for (i, line) in lines.iter().enumerate() {
        if PY_HEADER.is_match(line) {
            return Some(Format::Python);
        }
        if GO_GOROUTINE.is_match(line) {
            return Some(Format::Go);
        }
        if let Some(f) = frame_format_of_line(lines, i) {
            counts[Format::ALL.iter().position(|&x| x == f).unwrap_or(0)] += 1;
        }
    }
    let best = counts
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .max_by(|a, b| {
            // Ties go to the format listed first, hence the reversed index comparison.
            a.1.cmp(b.1).then(b.0.cmp(&a.0))
        });
    match best {
        Some((idx, _)) => Some(Format::ALL[idx]),
        None if lines
            .iter()
            .any(|l| l.starts_with("panic: ") || l.starts_with("fatal error: ")) =>
        {
            Some(Format::Go)
        }
        None => None,
    }
}

/// Which format's frame pattern a line matches, if any (only for detection).
fn frame_format_of_line(lines: &[&str], i: usize) -> Option<Format> {
    let line = lines[i];
    if python_frame_line(line).is_some() {
        Some(Format::Python)
    } else if JAVA_FRAME.is_match(line) {
        Some(Format::Java)
    } else if NODE_FRAME.is_match(line)
        || NODE_ANON_FRAME.is_match(line)
        || NODE_BUILTIN_FRAME.is_match(line)
    {
        Some(Format::Node)
    } else if RUBY_FRAME.is_match(line) {
        Some(Format::Ruby)
    } else if GO_LOCATION.is_match(line) {
        Some(Format::Go)
    } else {
        None
    }
}

/// The range of lines that holds the trace of the exception that escaped: Python prints
/// chained exceptions oldest first, so its last traceback; Java and Go print it first, so
/// everything before the first `Caused by:`/`Suppressed:` or the second goroutine.
fn block(format: Format, lines: &[&str]) -> (usize, usize) {
    match format {
        Format::Python => {
            let start = lines
                .iter()
                .rposition(|l| PY_HEADER.is_match(l))
                .unwrap_or(0);
            (start, lines.len())
        }
        Format::Java => {
            let end = lines
                .iter()
                .position(|l| {
                    let t = l.trim_start();
                    t.starts_with("Caused by:") || t.starts_with("Suppressed:")
                })
                .unwrap_or(lines.len());
            (0, end)
        }
        Format::Go => {
            let mut seen_goroutine = false;
            let mut end = lines.len();
            for (i, l) in lines.iter().enumerate() {
                if GO_GOROUTINE.is_match(l) {
                    if seen_goroutine {
                        end = i;
                        break;
                    }
                    seen_goroutine = true;
                }
            }
            (0, end)
        }
        Format::Node | Format::Ruby => (0, lines.len()),
    }
}

/// Reads the frame starting at line `i`, trying the detected format first and then the
/// others. Returns the frame and how many lines it used (Python frames take their source
/// line with them).
fn parse_frame_at(lines: &[&str], i: usize, end: usize, format: Format) -> Option<(Frame, usize)> {
    let order =
        std::iter::once(format).chain(Format::ALL.into_iter().filter(move |&f| f != format));
    for f in order {
        let parsed = match f {
            Format::Python => parse_python_frame(lines, i, end),
            Format::Node => parse_node_frame(lines[i]).map(|fr| (fr, 1)),
            Format::Java => parse_java_frame(lines[i]).map(|fr| (fr, 1)),
            Format::Go => parse_go_frame(lines, i).map(|fr| (fr, 1)),
            Format::Ruby => parse_ruby_frame(lines[i]).map(|(fr, _)| (fr, 1)),
        };
        if parsed.is_some() {
            return parsed;
        }
    }
    None
}

fn clip(line: &str) -> &str {
    if line.len() <= MAX_LINE_BYTES {
        return line;
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn parse_line_number(s: &str) -> u32 {
    s.parse().unwrap_or(0)
}

fn parse_python_frame(lines: &[&str], i: usize, end: usize) -> Option<(Frame, usize)> {
    let (file, line, func) = python_frame_line(lines[i])?;
    let mut frame = Frame {
        filename: file.to_string(),
        function: func.to_string(),
        lineno: parse_line_number(line),
        ..Frame::default()
    };
    // The source line is printed indented under its frame; absent for frozen or missing
    // files, in which case the next line is another frame or the exception itself.
    let mut consumed = 1;
    if let Some(next) = lines.get(i + 1).filter(|_| i + 1 < end) {
        let indented = next.starts_with(' ') || next.starts_with('\t');
        if indented && !next.trim().is_empty() && python_frame_line(next).is_none() {
            frame.context_line = next.trim().to_string();
            consumed = 2;
        }
    }
    Some((frame, consumed))
}

fn parse_node_frame(line: &str) -> Option<Frame> {
    if let Some(caps) = NODE_FRAME.captures(line) {
        return Some(Frame {
            function: caps.name("func").map_or("", |m| m.as_str()).to_string(),
            filename: caps.name("file").map_or("", |m| m.as_str()).to_string(),
            lineno: caps
                .name("line")
                .map_or(0, |m| parse_line_number(m.as_str())),
            colno: caps
                .name("col")
                .map_or(0, |m| parse_line_number(m.as_str())),
            ..Frame::default()
        });
    }
    if let Some(caps) = NODE_ANON_FRAME.captures(line) {
        return Some(Frame {
            filename: caps.name("file").map_or("", |m| m.as_str()).to_string(),
            lineno: caps
                .name("line")
                .map_or(0, |m| parse_line_number(m.as_str())),
            colno: caps
                .name("col")
                .map_or(0, |m| parse_line_number(m.as_str())),
            ..Frame::default()
        });
    }
    let caps = NODE_BUILTIN_FRAME.captures(line)?;
    // No file at all means V8 internals (`Promise.all`, `Array.map`): never the culprit.
    Some(Frame {
        function: caps.name("func").map_or("", |m| m.as_str()).to_string(),
        filename: caps.name("what").map_or("", |m| m.as_str()).to_string(),
        in_app: Some(false),
        ..Frame::default()
    })
}

fn parse_java_frame(line: &str) -> Option<Frame> {
    let caps = JAVA_FRAME.captures(line)?;
    let name = caps.name("name").map_or("", |m| m.as_str());
    // Java 9+ prefixes the module or class loader: `java.base/java.lang.Thread.run`,
    // `app//com.acme.Foo.bar`.
    let name = name.rsplit_once('/').map_or(name, |(_, n)| n);
    let (module, function) = match name.rsplit_once('.') {
        Some((m, f)) => (m, f),
        None => ("", name),
    };
    let src = caps.name("src").map_or("", |m| m.as_str()).trim();
    let (filename, lineno) = match src.rsplit_once(':') {
        Some((file, line)) if line.bytes().all(|b| b.is_ascii_digit()) => {
            (file, parse_line_number(line))
        }
        _ => (src, 0),
    };
    let filename = match filename {
        "Native Method" | "Unknown Source" => "",
        other => other,
    };
    Some(Frame {
        module: module.to_string(),
        function: function.to_string(),
        filename: filename.to_string(),
        lineno,
        ..Frame::default()
    })
}

/// A Go frame is a function line followed by an indented `file.go:line +0xoff` line; the
/// frame is read at the location line, looking back one line for the function.
fn parse_go_frame(lines: &[&str], i: usize) -> Option<Frame> {
    let caps = GO_LOCATION.captures(lines[i])?;
    let call = i
        .checked_sub(1)
        .and_then(|p| lines.get(p))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !GO_LOCATION.is_match(l))
        .unwrap_or("");
    let (module, function) = split_go_name(call);
    Some(Frame {
        module,
        function,
        filename: caps.name("file").map_or("", |m| m.as_str()).to_string(),
        lineno: caps
            .name("line")
            .map_or(0, |m| parse_line_number(m.as_str())),
        ..Frame::default()
    })
}

/// `github.com/acme/app/pkg.(*Server).Handle(0xc0000, 0x3)` → (`github.com/acme/app/pkg`,
/// `(*Server).Handle`): the package ends at the first dot after the last slash.
fn split_go_name(call: &str) -> (String, String) {
    let mut name = call.strip_prefix("created by ").unwrap_or(call);
    if let Some(idx) = name.find(" in goroutine ") {
        name = &name[..idx];
    }
    let name = strip_trailing_args(name.trim());
    // Slashes inside generic type arguments or argument lists are not package separators.
    let head_end = name.find(['(', '[']).unwrap_or(name.len());
    let pkg_start = name[..head_end].rfind('/').map_or(0, |s| s + 1);
    match name[pkg_start..].find('.') {
        Some(dot) => {
            let dot = pkg_start + dot;
            (name[..dot].to_string(), name[dot + 1..].to_string())
        }
        None => (String::new(), name.to_string()),
    }
}

/// Removes a trailing balanced `(...)` argument list, keeping names that are only a
/// parenthesised receiver such as `(*T)`.
pub(crate) fn strip_trailing_args(name: &str) -> &str {
    if !name.ends_with(')') {
        return name;
    }
    let mut depth = 0usize;
    for (idx, c) in name.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let head = name[..idx].trim_end();
                    return if head.is_empty() { name } else { head };
                }
            }
            _ => {}
        }
    }
    name
}

/// Returns the frame and, on the first line of a Ruby trace, the `message (Type)` part.
fn parse_ruby_frame(line: &str) -> Option<(Frame, Option<String>)> {
    let caps = RUBY_FRAME.captures(line)?;
    let frame = Frame {
        filename: caps.name("file").map_or("", |m| m.as_str()).to_string(),
        function: caps.name("func").map_or("", |m| m.as_str()).to_string(),
        lineno: caps
            .name("line")
            .map_or(0, |m| parse_line_number(m.as_str())),
        ..Frame::default()
    };
    let rest = caps
        .name("rest")
        .map(|m| m.as_str().trim().to_string())
        .filter(|r| !r.is_empty());
    Some((frame, rest))
}

/// `Type: value` (or `Type`) of an exception line, as `EXCEPTION_LINE` reads it. ASCII lines,
/// nearly all, are read by hand (`exception_line_ascii`): the pattern's captures cost more
/// than the rest of a trace's parsing.
fn split_exception_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    let (ty, value) = if line.is_ascii() && !line.contains('\n') {
        exception_line_ascii(line)?
    } else {
        let caps = EXCEPTION_LINE.captures(line)?;
        (
            caps.name("type")?.as_str(),
            caps.name("value").map_or("", |m| m.as_str()),
        )
    };
    Some((ty.to_string(), value.trim().to_string()))
}

/// `EXCEPTION_LINE` on an ASCII line without a newline: (type, value before trimming).
fn exception_line_ascii(line: &str) -> Option<(&str, &str)> {
    /// `\s*` on ASCII: space, \t, \n, \x0B, \x0C, \r.
    fn skip_spaces(s: &str) -> &str {
        s.trim_start_matches([' ', '\t', '\n', '\x0B', '\x0C', '\r'])
    }
    /// What follows a type: nothing, or ` [tag]`, then nothing or `: value`.
    fn tail(rest: &str) -> Option<&str> {
        let mut rest = rest;
        let spaced = skip_spaces(rest);
        if spaced.len() < rest.len()
            && let Some(inner) = spaced.strip_prefix('[')
            && let Some(end) = inner.find(']')
            && end > 0
            && inner[..end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            rest = &inner[end + 1..];
        }
        if rest.is_empty() {
            return Some("");
        }
        rest.strip_prefix(':').map(skip_spaces)
    }
    /// The end of a dotted name: identifiers (a letter, `_` or `$`, then letters, digits,
    /// `_` or `$`) joined by single dots.
    fn dotted_name_end(s: &str) -> Option<usize> {
        let b = s.as_bytes();
        let starts = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'$';
        let continues = |c: u8| starts(c) || c.is_ascii_digit();
        let mut i = 0;
        loop {
            if !b.get(i).copied().is_some_and(starts) {
                return None;
            }
            i += 1;
            while b.get(i).copied().is_some_and(continues) {
                i += 1;
            }
            if b.get(i) == Some(&b'.') && b.get(i + 1).copied().is_some_and(starts) {
                i += 1;
            } else {
                return Some(i);
            }
        }
    }
    fn read(s: &str) -> Option<(usize, &str)> {
        let end = dotted_name_end(s)?;
        tail(&s[end..]).map(|value| (end, value))
    }
    // The pattern prefers the optional prefix, and falls back to reading without it.
    let prefixed = line
        .strip_prefix("Exception in thread \"")
        .and_then(|r| r.find('"').map(|q| &r[q + 1..]))
        .or_else(|| line.strip_prefix("Uncaught"))
        .and_then(|r| {
            let spaced = skip_spaces(r);
            (spaced.len() < r.len()).then_some(spaced)
        });
    if let Some(rest) = prefixed
        && let Some((end, value)) = read(rest)
    {
        return Some((&rest[..end], value));
    }
    read(line).map(|(end, value)| (&line[..end], value))
}

/// Finds the exception named by the trace's header (Node, Java, Go, Ruby) or footer (Python).
fn exception(
    format: Format,
    lines: &[&str],
    start: usize,
    end: usize,
    first_frame: Option<usize>,
    last_frame: Option<usize>,
) -> (Option<String>, Option<String>) {
    let before_frames = &lines[start..first_frame.unwrap_or(end)];
    let found = match format {
        Format::Python => {
            // The exception line is the first unindented line after the frames; a multi-line
            // message continues below it.
            let from = last_frame.map_or(start, |l| l + 1);
            lines[from.min(end)..end]
                .iter()
                .filter(|l| !l.trim().is_empty() && !l.starts_with(' ') && !l.starts_with('\t'))
                .find_map(|l| split_exception_line(l))
        }
        Format::Node | Format::Java => before_frames
            .iter()
            .filter(|l| !l.trim().is_empty())
            .find_map(|l| split_exception_line(l)),
        Format::Go => before_frames.iter().find_map(|l| {
            let l = l.trim();
            ["panic", "fatal error"].iter().find_map(|ty| {
                l.strip_prefix(ty)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|value| (ty.to_string(), value.trim().to_string()))
            })
        }),
        Format::Ruby => first_frame
            .and_then(|i| parse_ruby_frame(lines[i]))
            .and_then(|(_, rest)| rest)
            .map(|rest| match RUBY_MESSAGE.captures(&rest) {
                Some(c) => (
                    c.name("type").map_or("", |m| m.as_str()).to_string(),
                    c.name("value").map_or("", |m| m.as_str()).to_string(),
                ),
                None => ("RuntimeError".to_string(), rest),
            }),
    };
    match found {
        Some((ty, value)) => (Some(ty), Some(value)),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written Python frame reader and the guards agree with the patterns they
    /// stand in for, on ordinary and awkward lines alike.
    #[test]
    fn hand_readers_match_the_patterns() {
        let lines = [
            r#"  File "/app/x.py", line 12, in handle"#,
            r#"File "/app/x.py", line 12"#,
            r#"	File "a b.py", line 7, in <module>   "#,
            r#"  File "/app/x.py", line 12, in  "#,
            r#"  File "/app/x.py", line 12, in "#,
            r#"  File "/app/x.py", line 12, in"#,
            r#"  File "/app/x.py", line 12 , in f"#,
            r#"  File "", line 12, in f"#,
            r#"  File "/app/x.py", line , in f"#,
            r#"  File "/app/x.py", line 12x"#,
            r#"  File "/app/"x".py", line 12, in f"#,
            "\u{a0} File \"/app/é.py\", line 3, in fünf\u{2003}",
            r#"  File "/app/x.py", line 12, in f(a, b)  x"#,
            "  File \"/app/x.py\", line 12, in \u{3000}",
            "  File \"/app/x.py\", line 12, in f\r",
            "Traceback (most recent call last):",
            "  Traceback (most recent call last):  ",
            "Traceback (most recent call first):",
            "goroutine 1 [running]:",
            " goroutine 1 [running]:",
            "    at Foo.bar (/app/x.js:1:2)",
            "at\tFoo.bar (/app/x.js:1:2)",
            "attach (/app/x.js:1:2)",
            "\tat com.acme.Foo.bar(Foo.java:42)",
            "\t/usr/local/go/src/runtime/panic.go:770 +0x132",
            "/usr/local/go/src/runtime/panic.go:770",
            "/app/x.rb:10:in 'save'",
            "from /app/x.rb:10:in `save'",
            "",
            "   ",
        ];
        for l in lines {
            let by_regex = PY_FRAME.captures(l).map(|c| {
                (
                    c.name("file").map_or("", |m| m.as_str()),
                    c.name("line").map_or("", |m| m.as_str()),
                    c.name("func").map_or("", |m| m.as_str()),
                )
            });
            assert_eq!(python_frame_line(l), by_regex, "{l:?}");
            for p in [
                &*PY_HEADER,
                &*GO_GOROUTINE,
                &*JAVA_FRAME,
                &*NODE_FRAME,
                &*NODE_ANON_FRAME,
                &*NODE_BUILTIN_FRAME,
                &*RUBY_FRAME,
                &*GO_LOCATION,
            ] {
                assert!((p.needs)(l) || !p.re.is_match(l), "{l:?} against {}", p.re);
            }
        }
    }

    /// The hand reader of exception lines agrees with `EXCEPTION_LINE` (which non-ASCII
    /// lines still go through) on ordinary and awkward lines alike.
    #[test]
    fn exception_lines_read_by_hand_match_the_pattern() {
        let lines = [
            "ValueError: bad price",
            "ValueError",
            "ValueError:",
            "ValueError:   spaced  ",
            "java.lang.IllegalStateException: closed",
            "Exception in thread \"main\" java.lang.NullPointerException: x",
            "Exception in thread \"main\"java.lang.NullPointerException",
            "Exception in thread \"a\"  \t Foo",
            "Exception in thread \"main\" ",
            "Exception in thread main Foo",
            "Uncaught TypeError: x is undefined",
            "Uncaught  TypeError",
            "Uncaught: not a prefix",
            "Uncaught [tag]",
            "Uncaught",
            "UncaughtTypeError: x",
            "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers",
            "Error [ERR_X]",
            "Error [ERR X]: y",
            "Error []: y",
            "Error[ERR]: y",
            "Error [ERR]x",
            "$Foo.bar_1.$baz: v",
            "a..b: c",
            "a.: c",
            ".a: c",
            "1Error: c",
            "Foo.1bar: c",
            "Foo bar: c",
            "Foo :c",
            "Foo\x0B: c",
            "Foo\x0B[A]\x0C: c",
            "Foo: line\rwith cr",
            "panic: boom",
            "Error: a: b: c",
            "",
            "   ",
            ":",
            "Ünïcode: fällt zurück",
            "Exception in thread \"é\" Foo: x",
        ];
        for l in lines {
            let l = l.trim();
            let by_regex = EXCEPTION_LINE.captures(l).map(|c| {
                (
                    c.name("type").map_or("", |m| m.as_str()),
                    c.name("value").map_or("", |m| m.as_str()),
                )
            });
            if l.is_ascii() {
                assert_eq!(exception_line_ascii(l), by_regex, "{l:?}");
            }
            assert_eq!(
                split_exception_line(l),
                by_regex.map(|(t, v)| (t.to_string(), v.trim().to_string())),
                "{l:?}"
            );
        }
    }

    fn last(p: &ParsedStack) -> &Frame {
        p.frames.last().expect("frames")
    }

    const PYTHON: &str = r#"Traceback (most recent call last):
  File "/usr/lib/python3.11/site-packages/django/core/handlers/exception.py", line 55, in inner
    response = get_response(request)
  File "/usr/lib/python3.11/site-packages/django/core/handlers/base.py", line 197, in _get_response
    response = wrapped_callback(request, *callback_args, **callback_kwargs)
  File "/app/shop/views.py", line 42, in checkout
    total = compute_total(cart)
  File "/app/shop/pricing.py", line 17, in compute_total
    return sum(parse_price(i) for i in cart.items)
  File "/app/shop/pricing.py", line 17, in <genexpr>
    return sum(parse_price(i) for i in cart.items)
  File "/app/shop/pricing.py", line 9, in parse_price
    return int(item.price)
           ^^^^^^^^^^^^^^^
ValueError: invalid literal for int() with base 10: 'abc'
"#;

    #[test]
    fn lines_are_what_str_lines_yields() {
        for text in [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\r",
            "a\r\n",
            "\r\n\r\n",
            "a\n\nb",
            "a\rb\n",
            "a\r\r\n",
            "\r",
            "x\r\ny\rz\n\r",
            "é\nü\r\n日本",
        ] {
            assert_eq!(
                lines(text).collect::<Vec<_>>(),
                text.lines().collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn python_traceback() {
        let p = parse(PYTHON);
        assert_eq!(p.frames.len(), 6);
        assert_eq!(p.frames[0].function, "inner");
        assert!(p.frames[0].filename.ends_with("exception.py"));
        let f = last(&p);
        assert_eq!(f.function, "parse_price");
        assert_eq!(f.filename, "/app/shop/pricing.py");
        assert_eq!(f.lineno, 9);
        assert_eq!(f.context_line, "return int(item.price)");
        assert_eq!(f.module, "");
        assert_eq!(p.exception_type.as_deref(), Some("ValueError"));
        assert_eq!(
            p.exception_value.as_deref(),
            Some("invalid literal for int() with base 10: 'abc'")
        );
        assert_eq!(p.platform, Some("python"));
        assert_eq!(parse(NODE).platform, Some("node"));
        assert_eq!(parse(JAVA).platform, Some("java"));
        assert!(!is_in_app(&p.frames[0]));
        assert!(is_in_app(f));
    }

    #[test]
    fn python_dotted_type_and_bare_type() {
        let text = "Traceback (most recent call last):\n  File \"/app/a.py\", line 1, in <module>\n    main()\n  File \"/app/a.py\", line 5, in main\n    r.raise_for_status()\nrequests.exceptions.HTTPError: 500 Server Error\n";
        let p = parse(text);
        assert_eq!(
            p.exception_type.as_deref(),
            Some("requests.exceptions.HTTPError")
        );
        assert_eq!(p.exception_value.as_deref(), Some("500 Server Error"));
        assert_eq!(last(&p).function, "main");

        let text = "Traceback (most recent call last):\n  File \"/app/a.py\", line 3, in <module>\n    time.sleep(10)\nKeyboardInterrupt\n";
        let p = parse(text);
        assert_eq!(p.frames.len(), 1);
        assert_eq!(p.exception_type.as_deref(), Some("KeyboardInterrupt"));
        assert_eq!(p.exception_value.as_deref(), Some(""));
    }

    #[test]
    fn python_chained_uses_last_traceback() {
        let text = "Traceback (most recent call last):\n  File \"/app/a.py\", line 3, in load\n    d[k]\nKeyError: 'k'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/a.py\", line 9, in main\n    load()\n  File \"/app/a.py\", line 5, in load\n    raise LookupError(k)\nLookupError: k\n";
        let p = parse(text);
        assert_eq!(p.frames.len(), 2);
        assert_eq!(p.frames[0].function, "main");
        assert_eq!(last(&p).lineno, 5);
        assert_eq!(p.exception_type.as_deref(), Some("LookupError"));
    }

    const NODE: &str = "TypeError: Cannot read properties of undefined (reading 'x')
    at getX (/app/src/util.js:10:15)
    at /app/src/handlers/order.js:22:7
    at Array.map (<anonymous>)
    at new OrderService (file:///app/src/service.mjs:5:3)
    at Object.<anonymous> (/app/src/index.js:1:2)
    at async Promise.all (index 0)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)";

    #[test]
    fn node_stack() {
        let p = parse(NODE);
        assert_eq!(p.frames.len(), 8);
        assert_eq!(p.frames[0].function, "Module._compile");
        assert_eq!(p.frames[0].filename, "node:internal/modules/cjs/loader");
        let f = last(&p);
        assert_eq!(f.function, "getX");
        assert_eq!(f.filename, "/app/src/util.js");
        assert_eq!((f.lineno, f.colno), (10, 15));
        let anon = &p.frames[6];
        assert_eq!(anon.function, "");
        assert_eq!(anon.filename, "/app/src/handlers/order.js");
        assert_eq!(p.frames[4].function, "new OrderService");
        assert_eq!(p.frames[4].filename, "file:///app/src/service.mjs");
        assert_eq!(p.frames[2].function, "async Promise.all");
        assert!(!is_in_app(&p.frames[2]));
        assert!(!is_in_app(&p.frames[0]));
        assert!(is_in_app(f));
        assert_eq!(p.exception_type.as_deref(), Some("TypeError"));
        assert_eq!(
            p.exception_value.as_deref(),
            Some("Cannot read properties of undefined (reading 'x')")
        );
    }

    const JAVA: &str = "Exception in thread \"main\" java.lang.IllegalStateException: boom
\tat com.acme.orders.OrderService.validate(OrderService.java:42)
\tat com.acme.orders.OrderService.place(OrderService.java:17)
\tat com.acme.web.OrderController.create(OrderController.java:88)
\tat jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:566)
\tat org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205) ~[spring-web-5.3.jar:5.3]
\tat com.acme.Main.main(Unknown Source)
Caused by: java.io.IOException: disk full
\tat com.acme.io.Disk.write(Disk.java:10)
\t... 5 more";

    #[test]
    fn java_stack() {
        let p = parse(JAVA);
        assert_eq!(p.frames.len(), 7);
        assert_eq!(p.frames[0].module, "com.acme.Main");
        assert_eq!(p.frames[0].function, "main");
        assert_eq!(p.frames[0].filename, "");
        let f = last(&p);
        assert_eq!(f.module, "com.acme.orders.OrderService");
        assert_eq!(f.function, "validate");
        assert_eq!(f.filename, "OrderService.java");
        assert_eq!(f.lineno, 42);
        assert_eq!(p.frames[2].module, "java.lang.reflect.Method");
        assert_eq!(p.frames[3].filename, "");
        assert!(!is_in_app(&p.frames[1]));
        assert!(!is_in_app(&p.frames[2]));
        assert!(!is_in_app(&p.frames[3]));
        assert!(is_in_app(f));
        assert_eq!(
            p.exception_type.as_deref(),
            Some("java.lang.IllegalStateException")
        );
        assert_eq!(p.exception_value.as_deref(), Some("boom"));
    }

    const GO: &str = "panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.lookup(...)
\t/app/main.go:12
main.handler(0xc000010000, 0x3)
\t/app/main.go:27 +0x1d
github.com/acme/app/pkg.(*Server).Handle(0xc0000a4000, {0x5b1e40, 0xc0000c2000})
\t/app/pkg/server.go:88 +0x145
net/http.HandlerFunc.ServeHTTP(0xc000012345?, {0x6a2f00?, 0xc0000c2000?}, 0x0?)
\t/usr/local/go/src/net/http/server.go:2136 +0x29
main.main()
\t/app/main.go:40 +0x6f
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3086 +0x5cb
exit status 2

goroutine 7 [IO wait]:
internal/poll.runtime_pollWait(0x7f, 0x72)
\t/usr/local/go/src/runtime/netpoll.go:343 +0x85";

    #[test]
    fn go_panic() {
        let p = parse(GO);
        assert_eq!(p.frames.len(), 6);
        assert_eq!(p.frames[0].module, "net/http");
        assert_eq!(p.frames[0].function, "(*Server).Serve");
        assert_eq!(p.frames[1].function, "main");
        let f = last(&p);
        assert_eq!(f.module, "main");
        assert_eq!(f.function, "lookup");
        assert_eq!(f.filename, "/app/main.go");
        assert_eq!(f.lineno, 12);
        let h = &p.frames[3];
        assert_eq!(h.module, "github.com/acme/app/pkg");
        assert_eq!(h.function, "(*Server).Handle");
        assert_eq!(h.lineno, 88);
        assert_eq!(p.frames[4].function, "handler");
        assert!(!is_in_app(&p.frames[2]));
        assert!(is_in_app(h));
        assert_eq!(p.exception_type.as_deref(), Some("panic"));
        assert_eq!(
            p.exception_value.as_deref(),
            Some("runtime error: index out of range [5] with length 3")
        );
    }

    #[test]
    fn go_runtime_frames_are_not_in_app() {
        let f = Frame {
            module: "runtime".into(),
            function: "gopanic".into(),
            filename: "runtime/panic.go".into(),
            ..Frame::default()
        };
        assert!(!is_in_app(&f));
        let f = Frame {
            module: "main".into(),
            filename: "/app/internal/x.go".into(),
            ..Frame::default()
        };
        assert!(is_in_app(&f));
    }

    const RUBY: &str = "/app/models/user.rb:10:in `save': undefined method 'bar' for nil (NoMethodError)
\tfrom /app/models/user.rb:4:in `block in persist'
\tfrom /usr/local/bundle/gems/activerecord-7.1.0/lib/active_record/transactions.rb:313:in 'transaction'
\tfrom /app/models/user.rb:3:in 'persist'
\tfrom /app/controllers/users_controller.rb:20:in `create'
\tfrom /app/x.rb:3:in `<main>'";

    #[test]
    fn ruby_backtrace() {
        let p = parse(RUBY);
        assert_eq!(p.frames.len(), 6);
        assert_eq!(p.frames[0].function, "<main>");
        assert_eq!(p.frames[0].filename, "/app/x.rb");
        let f = last(&p);
        assert_eq!(f.function, "save");
        assert_eq!(f.filename, "/app/models/user.rb");
        assert_eq!(f.lineno, 10);
        assert_eq!(p.frames[4].function, "block in persist");
        assert_eq!(p.frames[3].function, "transaction");
        assert!(!is_in_app(&p.frames[3]));
        assert_eq!(p.exception_type.as_deref(), Some("NoMethodError"));
        assert_eq!(
            p.exception_value.as_deref(),
            Some("undefined method 'bar' for nil")
        );
    }

    #[test]
    fn unknown_text_yields_recognised_frames_only() {
        let p = parse("some log line\n    at foo (/app/a.js:1:2)\nmore noise\n");
        assert_eq!(p.frames.len(), 1);
        assert_eq!(p.frames[0].function, "foo");
    }

    #[test]
    fn garbage_and_empty() {
        assert_eq!(parse(""), ParsedStack::default());
        assert_eq!(parse("\n\n\n"), ParsedStack::default());
        let p = parse("hello world\nthis is: not a trace\n\u{0}\u{7f}(((((:::");
        assert!(p.frames.is_empty());
        assert_eq!(p.exception_type, None);
        let _ =
            parse("  File \"\", line 99999999999999999999, in \n    at  (:1:)\n\tat (x)\n:1:in `'");
    }

    #[test]
    fn non_ascii() {
        let text = "Traceback (most recent call last):\n  File \"/app/données/vues.py\", line 7, in créer\n    raise Erreur('é')\nErreur: échec « total » 🚀\n";
        let p = parse(text);
        assert_eq!(p.frames.len(), 1);
        assert_eq!(p.frames[0].function, "créer");
        assert_eq!(p.exception_value.as_deref(), Some("échec « total » 🚀"));
        let p = parse("Ошибка: плохо\n    at функция (/app/файл.js:1:2)\n");
        assert_eq!(p.frames[0].function, "функция");
        assert_eq!(p.exception_type.as_deref(), Some("Ошибка"));
    }

    #[test]
    fn huge_random_text_is_fast() {
        let mut s = String::with_capacity(1 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet: Vec<char> = "abcXYZ019 :()/.\"'`\t\n@#é日at in File line"
            .chars()
            .collect();
        while s.len() < 1 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        let t = std::time::Instant::now();
        let p = parse(&s);
        assert!(p.frames.len() <= MAX_FRAMES);
        let one_line = "at x (".repeat(200_000);
        let _ = parse(&one_line);
        assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
    }

    #[test]
    fn frame_cap_keeps_newest() {
        let mut text = String::from("Error: deep\n");
        for i in 0..1200 {
            text.push_str(&format!("    at f{i} (/app/a.js:{}:1)\n", i + 1));
        }
        let p = parse(&text);
        assert_eq!(p.frames.len(), MAX_FRAMES);
        assert_eq!(last(&p).function, "f0");
        assert_eq!(p.frames[0].function, "f499");
    }

    #[test]
    fn parse_lines_falls_back_to_one_frame_per_line() {
        let lines = vec![
            "  step one ".to_string(),
            String::new(),
            "step two".to_string(),
        ];
        let p = parse_lines(&lines);
        assert_eq!(p.frames.len(), 2);
        assert_eq!(p.frames[0].function, "step one");
        assert_eq!(p.frames[1].function, "step two");

        let lines: Vec<String> = JAVA.lines().map(String::from).collect();
        assert_eq!(parse_lines(&lines), parse(JAVA));
    }

    #[test]
    fn in_app_respects_client_flag() {
        let f = Frame {
            filename: "/app/node_modules/x/index.js".into(),
            in_app: Some(true),
            ..Frame::default()
        };
        assert!(is_in_app(&f));
        let f = Frame {
            filename: "/app/a.py".into(),
            in_app: Some(false),
            ..Frame::default()
        };
        assert!(!is_in_app(&f));
        let f = Frame {
            filename: "<frozen importlib._bootstrap>".into(),
            ..Frame::default()
        };
        assert!(!is_in_app(&f));
        let f = Frame {
            filename: "C:\\Python39\\Lib\\site-packages\\x.py".into(),
            ..Frame::default()
        };
        assert!(!is_in_app(&f));
    }
}
