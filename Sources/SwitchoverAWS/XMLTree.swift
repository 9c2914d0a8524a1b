import Foundation

/// A small XML reader for AWS's answers (Route53's REST-XML, ELBv2's Query API, both error
/// shapes), reading a whole document into a tree of elements.
///
/// Why not Foundation's `XMLParser`: on Linux it lives in FoundationXML, which links libxml2,
/// and the release binary carries its runtime itself (README "Architecture": nothing to install
/// beside it; libcurl is even loaded only on first use). AWS's answers use a small part of XML:
/// elements, attributes, text, the five predefined entities and character references, an XML
/// declaration, now and then a comment or CDATA. That part is read here, strictly: anything else
/// (a DOCTYPE, an unclosed or mismatched tag) is an error, never a guess.
///
/// Element names keep their local part only (`ns:Error` → `Error`): AWS qualifies names with a
/// default namespace (`xmlns="https://route53.amazonaws.com/doc/2013-04-01/"`), and a prefix
/// must not change what a name means to us.
struct XMLElement: Sendable {
    var name: String
    var attributes: [String: String]
    var children: [XMLElement]
    /// The element's own text (character data directly inside it), entities decoded.
    var text: String

    /// The first child named `name`.
    func child(_ name: String) -> XMLElement? { children.first { $0.name == name } }
    /// Every child named `name`, in order.
    func children(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }
    /// The text of the first child named `name`, trimmed; nil when there is no such child.
    func string(_ name: String) -> String? { child(name)?.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    /// The child at `path` (`["ChangeInfo", "Status"]`).
    func path(_ names: String...) -> XMLElement? {
        var element: XMLElement? = self
        for name in names { element = element?.child(name) }
        return element
    }
    /// The first element named `name` at any depth below this one (depth first, in order).
    func first(_ name: String) -> XMLElement? {
        for child in children {
            if child.name == name { return child }
            if let found = child.first(name) { return found }
        }
        return nil
    }

    /// Parses `data` (UTF-8) into its root element.
    static func parse(_ data: Data) throws(XMLError) -> XMLElement {
        var reader = XMLReader(bytes: Array(data))
        return try reader.document()
    }
}

struct XMLError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

private struct XMLReader {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) {
        // A UTF-8 byte order mark is allowed before the declaration.
        self.bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
    }

    mutating func document() throws(XMLError) -> XMLElement {
        try skipMisc()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else { throw XMLError("no root element") }
        let root = try element()
        try skipMisc()
        guard index == bytes.count else { throw XMLError("content after the root element at byte \(index)") }
        return root
    }

    /// Blanks, the XML declaration (and other processing instructions), comments.
    mutating func skipMisc() throws(XMLError) {
        while true {
            skipBlanks()
            if starts(with: "<?") {
                try skip(past: "?>")
            } else if starts(with: "<!--") {
                try skip(past: "-->")
            } else if starts(with: "<!") {
                throw XMLError("a DOCTYPE or other declaration at byte \(index) is not read")
            } else {
                return
            }
        }
    }

    mutating func element() throws(XMLError) -> XMLElement {
        index += 1  // "<"
        let qualified = name()
        guard !qualified.isEmpty else { throw XMLError("an element without a name at byte \(index)") }
        var attributes: [String: String] = [:]
        while true {
            skipBlanks()
            guard index < bytes.count else { throw XMLError("unterminated start tag <\(qualified)") }
            if starts(with: "/>") {
                index += 2
                return XMLElement(name: Self.local(qualified), attributes: attributes, children: [], text: "")
            }
            if bytes[index] == UInt8(ascii: ">") {
                index += 1
                break
            }
            let attribute = name()
            skipBlanks()
            guard !attribute.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                throw XMLError("a malformed attribute in <\(qualified)> at byte \(index)")
            }
            index += 1
            skipBlanks()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                throw XMLError("an unquoted attribute value in <\(qualified)> at byte \(index)")
            }
            let quote = bytes[index]
            index += 1
            let start = index
            while index < bytes.count && bytes[index] != quote { index += 1 }
            guard index < bytes.count else { throw XMLError("an unterminated attribute value in <\(qualified)>") }
            attributes[attribute] = try Self.decodeEntities(bytes[start..<index])
            index += 1
        }

        var children: [XMLElement] = []
        var text: [UInt8] = []
        while true {
            guard index < bytes.count else { throw XMLError("<\(qualified)> is not closed") }
            if starts(with: "</") {
                index += 2
                let closing = name()
                skipBlanks()
                guard closing == qualified, index < bytes.count, bytes[index] == UInt8(ascii: ">") else {
                    throw XMLError("</\(closing)> closes <\(qualified)> at byte \(index)")
                }
                index += 1
                let decoded = try Self.decodeEntities(text[...])
                return XMLElement(name: Self.local(qualified), attributes: attributes, children: children, text: decoded)
            } else if starts(with: "<!--") {
                try skip(past: "-->")
            } else if starts(with: "<![CDATA[") {
                index += 9
                let start = index
                try skip(past: "]]>")
                // CDATA is literal: escape its ampersands so the entity pass leaves it as it was.
                for byte in bytes[start..<(index - 3)] {
                    if byte == UInt8(ascii: "&") { text += Array("&amp;".utf8) } else { text.append(byte) }
                }
            } else if starts(with: "<?") {
                try skip(past: "?>")
            } else if bytes[index] == UInt8(ascii: "<") {
                children.append(try element())
            } else {
                text.append(bytes[index])
                index += 1
            }
        }
    }

    mutating func name() -> String {
        let start = index
        while index < bytes.count {
            let b = bytes[index]
            let isNameByte = b >= 0x80 || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: ":")
                || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            guard isNameByte else { break }
            index += 1
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func skipBlanks() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func starts(with prefix: String) -> Bool {
        let p = Array(prefix.utf8)
        return index + p.count <= bytes.count && bytes[index..<(index + p.count)].elementsEqual(p)
    }

    mutating func skip(past terminator: String) throws(XMLError) {
        let t = Array(terminator.utf8)
        while index + t.count <= bytes.count {
            if bytes[index..<(index + t.count)].elementsEqual(t) {
                index += t.count
                return
            }
            index += 1
        }
        throw XMLError("'\(terminator)' missing")
    }

    static func local(_ qualified: String) -> String {
        guard let colon = qualified.lastIndex(of: ":") else { return qualified }
        return String(qualified[qualified.index(after: colon)...])
    }

    /// `&amp; &lt; &gt; &quot; &apos; &#NN; &#xNN;` decoded; any other entity is an error.
    static func decodeEntities(_ raw: ArraySlice<UInt8>) throws(XMLError) -> String {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out = [UInt8]()
        var i = raw.startIndex
        while i < raw.endIndex {
            guard raw[i] == UInt8(ascii: "&") else {
                out.append(raw[i])
                i += 1
                continue
            }
            guard let semicolon = raw[i...].firstIndex(of: UInt8(ascii: ";")) else { throw XMLError("an unterminated entity") }
            let entity = String(decoding: raw[(i + 1)..<semicolon], as: UTF8.self)
            switch entity {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                let number: UInt32? = entity.hasPrefix("#x") || entity.hasPrefix("#X") ? UInt32(entity.dropFirst(2), radix: 16)
                    : entity.hasPrefix("#") ? UInt32(entity.dropFirst(), radix: 10) : nil
                guard let number, let scalar = Unicode.Scalar(number) else { throw XMLError("unknown entity &\(entity);") }
                out += Array(String(Character(scalar)).utf8)
            }
            i = semicolon + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
