import SwitchoverNet
import Testing

/// `HTTPError.redactingCredentials`: the one rule for every URL Switchover prints (logs, the
/// journal, `status`, the report).
struct RedactionTests {
    @Test("user-info and credential-like query parameters are redacted; the rest stays", arguments: [
        ("http://user:secret@host:9090/p", "http://host:9090/p"),
        ("http://host:9090?token=secret", "http://host:9090?token=<redacted>"),
        ("http://host:9090/prefix?token=secret&x=1", "http://host:9090/prefix?token=<redacted>&x=1"),
        ("https://h/api/v1/query?access_token=s1&query=up#top", "https://h/api/v1/query?access_token=<redacted>&query=up#top"),
        ("http://h/?KEY=s&apikey=s&api_key=s&Api-Key=s&password=s&client_secret=s", "http://h/?KEY=<redacted>&apikey=<redacted>&api_key=<redacted>&Api-Key=<redacted>&password=<redacted>&client_secret=<redacted>"),
        ("http://h/?X-Amz-Signature=s&X-Amz-Security-Token=s&sig=s&auth=s&Authorization=s", "http://h/?X-Amz-Signature=<redacted>&X-Amz-Security-Token=<redacted>&sig=<redacted>&auth=<redacted>&Authorization=<redacted>"),
        ("http://h/?%74oken=s", "http://h/?%74oken=<redacted>"),
        ("http://u:p@h/?token=s&token", "http://h/?token=<redacted>&token"),
        ("http://h/?query=sum(x)&step=1", "http://h/?query=sum(x)&step=1"),
        ("http://h/path?", "http://h/path?"),
        ("not a url ?token=s", "not a url ?token=s"),
    ])
    func redacts(_ url: String, _ expected: String) {
        #expect(HTTPError.redactingCredentials(url) == expected)
    }

    @Test func anHTTPErrorNeverHoldsTheSecret() {
        let error = HTTPError(code: .timeout, curlCode: 28, message: "timed out", url: "http://u:pw@h:1/x?token=abc&q=1", method: "GET")
        #expect(error.url == "http://h:1/x?token=<redacted>&q=1")
        #expect(!"\(error)".contains("abc") && !"\(error)".contains("pw"))
    }
}
