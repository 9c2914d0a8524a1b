import Foundation
import Testing
import Yams
@testable import SwitchoverCore
import SwitchoverTestKit

/// The config loader types plain scalars itself (`PlainScalarTags`, matched by hand) instead of
/// through Yams's default resolver (NSRegularExpression, which loads ICU). Held here to give the
/// tag Yams's own resolver gives, on the cases that matter and on random text built from the
/// characters the rules look at.
@Suite struct PlainScalarTagsTests {
    static func yams(_ text: String) -> String {
        Resolver.default.resolveTag(of: Node(text)).rawValue
    }

    @Test("each YAML 1.1 rule, its edges and ordinary config text: the tag Yams's default resolver gives")
    func namedCases() {
        let cases = [
            "yes", "Yes", "YES", "yEs", "no", "on", "OFF", "true", "False", "y", "n",
            "0", "5", "+5", "-0", "0755", "0o17", "0o", "0b101", "0b", "0x1F", "0x", "0xg", "1_000", "_1", "1_", "1:30", "190:20:30",
            "1:60", "1:5", "1:05:59.5", "1.5", "1.", ".5", ".5e+3", ".5e3", "1e10", "1E-3", "1.28", "1.27.4", "-.inf", ".Inf", ".NaN",
            ".nan", "nan", "inf", "+", "-", ".", "<<", "<", "~", "null", "Null", "NULL", "nUll", "", "=", "==",
            "2026-12-02", "2026-1-2 10:00:00", "2026-12-02T10:39:12.250Z", "2026-12-02t10:39:12 +01:00", "2026-12-02 10:39",
            "blue-1", "/etc/x", "127.0.0.1:9", "10s", "250ms", "1m30s", "be_cart", "cluster.local", "v1", "5xx",
        ]
        for text in cases {
            #expect(PlainScalarTags.tag(of: text).rawValue == Self.yams(text), "'\(text)'")
        }
    }

    @Test("40,000 random strings of the rules' characters and pieces: the same tag as Yams's default resolver, every one")
    func randomText() {
        let alphabet = Array("0123456789+-._:eExXobBabcdfinNIlLuUtTrRsSyYoO~<=Z \t-:.").map(String.init)
        // Pieces that make whole dates, times, sexagesimals and bases likely, not just possible.
        let pieces = ["0", "1", "5", "6", "9", "12", "59", "60", "123", "2026", ":", "-", ".", "T", "t", " ", "\t", "Z",
                      "+", "e", "E", "_", "0x", "0b", "0o", ".inf", ".nan", "1_0", "2026-12-02", "10:39:12", "+01:00"]
        var generator = SeededGenerator(seed: 18)
        var differing: [String] = []
        for round in 0..<40_000 {
            let from = round % 2 == 0 ? alphabet : pieces
            let length = Int.random(in: 0...(round % 2 == 0 ? 10 : 6), using: &generator)
            let text = (0..<length).map { _ in from.randomElement(using: &generator)! }.joined()
            if PlainScalarTags.tag(of: text).rawValue != Self.yams(text) { differing.append(text) }
        }
        #expect(differing.isEmpty, "\(differing.count) differ, first: \(differing.prefix(10).map { "'\($0)'" })")
    }

    @Test("keys stay strings, as PlainScalarTags says: `5:` and `\"5\":` in one mapping are one key written twice")
    func keysAreText() throws {
        #expect(throws: (any Error).self) { _ = try Yams.compose(yaml: "5: a\n\"5\": b\n", .basic) }
        let node = PlainScalarTags.typed(try #require(try Yams.compose(yaml: "5: a\n", .basic)))
        let key = try #require(node.mapping?.keys.first)
        #expect(key.tag.rawValue == Tag.Name.str.rawValue)
        #expect(node.mapping?["5"]?.tag.rawValue == Tag.Name.str.rawValue, "the value 'a' is a string")
    }

    @Test("a document's untagged scalars are typed, quoted and explicitly tagged ones keep their tag, marks stay")
    func typedDocument() throws {
        let text = """
            a: 5
            b: "5"
            c: !!str 5
            d: [yes, ~, 1.5]
            e: {f: 0x1F}
            """
        let node = PlainScalarTags.typed(try #require(try Yams.compose(yaml: text, .basic)))
        let mapping = try #require(node.mapping)
        #expect(mapping["a"]?.tag.rawValue == Tag.Name.int.rawValue)
        #expect(mapping["b"]?.tag.rawValue == Tag.Name.str.rawValue)
        #expect(mapping["c"]?.tag.rawValue == Tag.Name.str.rawValue)
        #expect(mapping["d"]?.sequence?.map(\.tag.rawValue) == [Tag.Name.bool, .null, .float].map(\.rawValue))
        #expect(mapping["e"]?.mapping?["f"]?.tag.rawValue == Tag.Name.int.rawValue)
        #expect(mapping["d"]?.sequence?[2].mark?.line == 4)
        #expect(mapping["e"]?.mapping?["f"]?.mark?.column == 8)
    }
}
