import Foundation
import SwitchoverTrust
import Testing

/// HMAC-SHA256 through OpenSSL, against RFC 4231's test vectors.
@Suite struct HMACTests {
    @Test("RFC 4231 test cases 1, 2 and 6 (a key longer than the block)")
    func rfc4231() {
        #expect(HMACSHA256.hex(key: Data(repeating: 0x0b, count: 20), message: Data("Hi There".utf8))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(HMACSHA256.hex(key: Data("Jefe".utf8), message: Data("what do ya want for nothing?".utf8))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(HMACSHA256.hex(key: Data(repeating: 0xaa, count: 131),
                               message: Data("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test("an empty body is signed too")
    func emptyMessage() {
        #expect(HMACSHA256.hex(key: Data("k".utf8), message: Data()).count == 64)
    }
}
