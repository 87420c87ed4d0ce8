import Foundation
import LatentProtocol

/// A configuration file line that cannot be used: which file, which line, and why.
public struct ConfigFileError: Error, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let message: String
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}

/// `latentd.conf` in Redis' `redis.conf` format: one `directive value` per line, `#` comments, values
/// quoted as Redis quotes them ("double" with \n \t \xHH escapes, 'single'), `include other.conf`.
/// An included path that is relative is taken from the directory of the file that includes it. A
/// directive given twice takes the last value, as in Redis.
public enum ConfigFile {
    /// Reads `path` (and its includes) and applies every directive to `configuration` in order.
    public static func apply(path: String, to configuration: inout ServerConfiguration) throws {
        var visiting: [String] = []
        try apply(path: path, to: &configuration, visiting: &visiting)
    }

    private static func apply(path: String, to configuration: inout ServerConfiguration, visiting: inout [String]) throws {
        let resolved = URL(fileURLWithPath: path).standardizedFileURL.path
        guard !visiting.contains(resolved) else {
            throw ConfigFileError(file: path, line: 0, message: "include loop: \((visiting + [resolved]).joined(separator: " -> "))")
        }
        guard visiting.count < 16 else { throw ConfigFileError(file: path, line: 0, message: "includes nested more than 16 deep") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(file: path, line: 0, message: "cannot read the configuration file (missing or not readable)")
        }
        visiting.append(resolved)
        defer { visiting.removeLast() }
        let text = String(decoding: data, as: UTF8.self)
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = i + 1
            let fail = { (message: String) in ConfigFileError(file: path, line: lineNumber, message: message) }
            guard let words = try words(of: String(raw), fail: fail) else { continue }
            let name = words[0].lowercased()
            if name == "include" {
                guard words.count == 2 else { throw fail("include takes one path") }
                let target = words[1].hasPrefix("/") ? words[1]
                    : URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(words[1]).path
                try apply(path: target, to: &configuration, visiting: &visiting)
                continue
            }
            guard let directive = ConfigSchema.directive(name) else {
                throw fail("unknown directive '\(words[0].prefix(64))'; known: include, "
                    + ConfigSchema.directives.map(\.name).joined(separator: ", "))
            }
            guard words.count == 2 || (directive.multiWord && words.count > 2) else {
                throw fail("\(directive.name) takes one value, got \(words.count - 1) (quote a value that has spaces)")
            }
            do {
                try directive.set(&configuration, words.dropFirst().joined(separator: " "))
            } catch let e as ConfigValueError {
                throw fail(e.description)
            }
        }
    }

    /// The words of a line, nil for a blank or comment line.
    static func words(of line: String, fail: (String) -> ConfigFileError) throws -> [String]? {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        let split: [[UInt8]]
        do {
            split = try InlineSplitter.split(Array(trimmed.utf8))
        } catch {
            throw fail("unbalanced quotes")
        }
        guard !split.isEmpty else { return nil }
        return split.map { String(decoding: $0, as: UTF8.self) }
    }

    /// A value as a configuration line writes it: bare when it needs no quoting, double-quoted otherwise.
    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 && $0 != "\"" && $0 != "'" && $0 != "\\" && $0 != "#" }
        if plain { return value }
        var out = "\""
        for b in value.utf8 {
            switch b {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 10: out += "\\n"
            case 13: out += "\\r"
            case 9: out += "\\t"
            case 32..<127: out += String(UnicodeScalar(b))
            default: out += String(format: "\\x%02x", b)
            }
        }
        return out + "\""
    }

    /// CONFIG REWRITE: rewrites `path` so it states `configuration`. A directive's last line in this file
    /// is replaced in place (earlier duplicates are removed); settings that differ from the defaults and
    /// have no line are appended; comments, blank lines and includes are kept. Written to a temporary
    /// file and renamed over the original, so a crash leaves the old file or the new one.
    public static func rewrite(path: String, with configuration: ServerConfiguration) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError(file: path, line: 0, message: "cannot read the configuration file to rewrite it")
        }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var lastLine: [String: Int] = [:]
        var drop = Set<Int>()
        for (i, line) in lines.enumerated() {
            let words = (try? words(of: line, fail: { ConfigFileError(file: path, line: i + 1, message: $0) })) ?? nil
            guard let words, let d = ConfigSchema.directive(words[0]) else { continue }
            if let earlier = lastLine[d.name] { drop.insert(earlier) }
            lastLine[d.name] = i
        }
        let defaults = ServerConfiguration()
        var appended: [String] = []
        for d in ConfigSchema.directives {
            let line = "\(d.name) " + (d.multiWord ? d.get(configuration) : quoted(d.get(configuration)))
            if let i = lastLine[d.name] {
                lines[i] = line
            } else if d.get(configuration) != d.get(defaults) {
                appended.append(line)
            }
        }
        var out = lines.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        if !appended.isEmpty { out += ["", "# Generated by CONFIG REWRITE"] + appended }
        let temporary = path + ".rewrite-\(ProcessInfo.processInfo.processIdentifier)"
        guard FileManager.default.createFile(atPath: temporary, contents: Data((out.joined(separator: "\n") + "\n").utf8)) else {
            throw ConfigFileError(file: path, line: 0, message: "cannot write \(temporary) (directory not writable?)")
        }
        if rename(temporary, path) != 0 {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            throw ConfigFileError(file: path, line: 0, message: "cannot replace the configuration file: \(why)")
        }
    }
}
