import Foundation
import SwitchoverAWS
import SwitchoverNet
import SwitchoverTestKit
import Testing

/// Our SigV4 against botocore's (`SigV4Auth`, and `S3SigV4Auth` for S3), the signer every AWS
/// SDK for Python uses: the same requests, the same fixed instant and credentials, and the
/// Authorization, X-Amz-Date, X-Amz-Security-Token and X-Amz-Content-SHA256 headers must be
/// equal byte for byte.
@Suite struct SigV4ReferenceTests {
    /// 2026-02-28T23:59:07Z: a fixed instant, one second before nothing in particular but a
    /// month's end, so the day in the scope is computed, not copied.
    static let instant = Date(timeIntervalSince1970: 1_772_323_147)

    struct Case: Sendable {
        var label: String
        var service: String
        var region: String
        var request: AWSRequest
        var keys: Keys
    }

    /// Fixed credentials, spelled out for botocore (the credentials type never shows its secrets).
    struct Keys: Sendable {
        var id: String
        var secret: String
        var token: String?
        var credentials: AWSCredentials { AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: token) }
    }

    static let plain = Keys(id: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let temporary = Keys(id: "ASIAEXAMPLE0TEMPORARY", secret: "Zm9vYmFy/c2VjcmV0+a2V5cw==",
                                token: "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+token/with+plus==")

    static let cases: [Case] = {
        let changeBatch = """
            <?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>app.example.com.</Name><Type>CNAME</Type><SetIdentifier>blue</SetIdentifier><Weight>255</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>blue-ingress.example.com</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>
            """
        let form = "Action=ModifyListener&Version=2015-12-01&ListenerArn=arn%3Aaws%3Aelasticloadbalancing%3Aeu-west-1%3A123456789012%3Alistener%2Fapp%2Fdemo%2F50dc6c495c0c9188%2Ff2f7dc8efc522ab2&DefaultActions.member.1.Type=forward"
        let formType = [HTTPHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        return [
            Case(label: "route53 GET rrset with a query to sort", service: "route53", region: "us-east-1",
                 request: AWSRequest(method: "GET", endpoint: "https://route53.amazonaws.com", path: "/2013-04-01/hostedzone/Z0123456789ABC/rrset",
                                     query: [("type", "CNAME"), ("name", "app.example.com."), ("maxitems", "2"), ("identifier", "blue")]),
                 keys: plain),
            Case(label: "route53 POST change batch, session token", service: "route53", region: "us-east-1",
                 request: AWSRequest(method: "POST", endpoint: "https://route53.amazonaws.com", path: "/2013-04-01/hostedzone/Z0123456789ABC/rrset/",
                                     headers: [HTTPHeader("Content-Type", "text/xml")], body: Data(changeBatch.utf8)),
                 keys: temporary),
            Case(label: "route53 GET change on moto's port", service: "route53", region: "us-east-1",
                 request: AWSRequest(method: "GET", endpoint: "http://127.0.0.1:5000", path: "/2013-04-01/change/C2682N5HXP0BZ4"),
                 keys: plain),
            Case(label: "elbv2 POST form body, eu-west-1, session token", service: "elasticloadbalancing", region: "eu-west-1",
                 request: AWSRequest(method: "POST", endpoint: "https://elasticloadbalancing.eu-west-1.amazonaws.com", path: "/",
                                     headers: formType, body: Data(form.utf8)),
                 keys: temporary),
            Case(label: "elbv2 POST empty body, ap-southeast-2", service: "elasticloadbalancing", region: "ap-southeast-2",
                 request: AWSRequest(method: "POST", endpoint: "https://elasticloadbalancing.ap-southeast-2.amazonaws.com", path: "/",
                                     headers: formType),
                 keys: plain),
            Case(label: "sts GET, query needing escaping and sorting (repeated names, unicode, reserved characters)",
                 service: "sts", region: "us-west-2",
                 request: AWSRequest(method: "GET", endpoint: "https://sts.us-west-2.amazonaws.com", path: "/",
                                     query: [("Version", "2011-06-15"), ("Action", "GetCallerIdentity"), ("tag", "b=2&c"),
                                             ("tag", "a b+c"), ("Übung", "naïve/é~*"), ("empty", ""), ("_under", "x"),
                                             ("Zeta", "!'()*"), ("a.b-c~d", "%41")]),
                 keys: temporary),
            Case(label: "sts POST form, eu-central-1", service: "sts", region: "eu-central-1",
                 request: AWSRequest(method: "POST", endpoint: "https://sts.eu-central-1.amazonaws.com", path: "/",
                                     headers: formType, body: Data("Action=GetCallerIdentity&Version=2011-06-15".utf8)),
                 keys: plain),
            Case(label: "a path needing escaping and normalizing: spaces, %, unicode, dot segments, repeated slashes",
                 service: "execute-api", region: "sa-east-1",
                 request: AWSRequest(method: "GET", endpoint: "https://abc123.execute-api.sa-east-1.amazonaws.com",
                                     path: "/prod/./a b/%2Fencoded/ü//x/../y~z/", query: [("q", "1")]),
                 keys: plain),
            Case(label: "headers to trim, repeat and leave unsigned; default port dropped",
                 service: "route53", region: "us-east-1",
                 request: AWSRequest(method: "GET", endpoint: "https://ROUTE53.amazonaws.com:443", path: "/2013-04-01/hostedzone/Z1",
                                     headers: [HTTPHeader("X-Custom", "  a   b\tc  "), HTTPHeader("x-custom", "second"),
                                               HTTPHeader("User-Agent", "switchover"), HTTPHeader("Expect", "100-continue")]),
                 keys: temporary),
            Case(label: "s3 GET: path as sent (no double encoding), payload hash header, session token",
                 service: "s3", region: "eu-west-3",
                 request: AWSRequest(method: "GET", endpoint: "https://bucket.s3.eu-west-3.amazonaws.com", path: "/photos/a%20b/../c%2Bd.jpg",
                                     query: [("list-type", "2"), ("prefix", "a/b c")]),
                 keys: temporary),
            Case(label: "s3 PUT with a body", service: "s3", region: "us-east-1",
                 request: AWSRequest(method: "PUT", endpoint: "https://s3.us-east-1.amazonaws.com", path: "/bucket/key~with~tildes",
                                     headers: [HTTPHeader("Content-Type", "application/octet-stream")], body: Data("hello, world\n".utf8)),
                 keys: plain),
        ]
    }()

    /// botocore signs every case (its clock fixed to `instant`) and prints the headers it set.
    static func botocoreHeaders(for cases: [Case]) async throws -> [[String: String]] {
        let input = cases.map { c -> [String: Any] in
            var entry: [String: Any] = [
                "service": c.service, "region": c.region, "method": c.request.method,
                "url": c.request.endpoint + c.request.path,
                "params": c.request.query.map { [$0.name, $0.value] },
                "headers": c.request.headers.map { [$0.name, $0.value] },
                "body": c.request.body.base64EncodedString(),
                "key": c.keys.id, "secret": c.keys.secret,
            ]
            if let token = c.keys.token { entry["token"] = token }
            return entry
        }
        let output = try await BotoPython.run("""
            import base64, datetime
            import botocore.auth
            from botocore.auth import SigV4Auth, S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            instant = datetime.datetime(2026, 2, 28, 23, 59, 7)
            botocore.auth.get_current_datetime = lambda remove_tzinfo=True: instant
            results = []
            for case in json.load(sys.stdin):
                request = AWSRequest(method=case["method"], url=case["url"], data=base64.b64decode(case["body"]),
                                     params=[tuple(p) for p in case["params"]])
                for name, value in case["headers"]:
                    request.headers[name] = value  # appends: a repeated name stays repeated
                credentials = Credentials(case["key"], case["secret"], case.get("token"))
                signer = S3SigV4Auth if case["service"] == "s3" else SigV4Auth
                signer(credentials, case["service"], case["region"]).add_auth(request)
                results.append({name: request.headers[name] for name in
                                ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")
                                if name in request.headers})
            print(json.dumps(results))
            """, input: try JSONSerialization.data(withJSONObject: input))
        guard let results = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: String]] else {
            throw TestKitError("botocore printed: \(output)")
        }
        return results
    }

    @Test("our Authorization header equals botocore's, byte for byte, for every service, region, query, path and body")
    func signaturesMatchBotocore() async throws {
        let reference = try await Self.botocoreHeaders(for: Self.cases)
        try #require(reference.count == Self.cases.count)
        for (c, botocore) in zip(Self.cases, reference) {
            let ours = try SigV4Signer(service: c.service, region: c.region).sign(c.request, credentials: c.keys.credentials, at: Self.instant)
            let sent = Dictionary(ours.headers.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            #expect(ours.authorization == botocore["Authorization"], "\(c.label)\ncanonical request:\n\(ours.canonicalRequest)")
            #expect(sent["Authorization"] == botocore["Authorization"], "\(c.label)")
            #expect(sent["X-Amz-Date"] == botocore["X-Amz-Date"], "\(c.label)")
            #expect(sent["X-Amz-Security-Token"] == botocore["X-Amz-Security-Token"], "\(c.label)")
            #expect(sent["X-Amz-Content-SHA256"] == botocore["X-Amz-Content-SHA256"], "\(c.label)")
        }
        // The cases did exercise what they claim.
        #expect(reference.contains { $0["X-Amz-Security-Token"] != nil })
        #expect(reference.contains { $0["X-Amz-Content-SHA256"] != nil })
        #expect(reference.first?["X-Amz-Date"] == "20260228T235907Z")
    }

    @Test("AWS's published example: the GET of IAM ListUsers signs to the documented signature")
    func awsDocumentedExample() throws {
        // docs.aws.amazon.com, "Create a signed AWS API request" (Signature Version 4 example):
        // GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08, with
        // Content-Type: application/x-www-form-urlencoded; charset=utf-8, on 20150830T123600Z.
        let request = AWSRequest(method: "GET", endpoint: "https://iam.amazonaws.com", path: "/",
                                 query: [("Action", "ListUsers"), ("Version", "2010-05-08")],
                                 headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")])
        let signed = try SigV4Signer(service: "iam", region: "us-east-1")
            .sign(request, credentials: Self.plain.credentials, at: Date(timeIntervalSince1970: 1_440_938_160))
        #expect(signed.amzDate == "20150830T123600Z")
        #expect(signed.canonicalRequest == """
            GET
            /
            Action=ListUsers&Version=2010-05-08
            content-type:application/x-www-form-urlencoded; charset=utf-8
            host:iam.amazonaws.com
            x-amz-date:20150830T123600Z

            content-type;host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    }

    @Test("signing is deterministic for a given instant, and a second later differs")
    func deterministic() throws {
        let c = Self.cases[1]
        let signer = SigV4Signer(service: c.service, region: c.region)
        let credentials = c.keys.credentials
        let first = try signer.sign(c.request, credentials: credentials, at: Self.instant)
        let again = try signer.sign(c.request, credentials: credentials, at: Self.instant.addingTimeInterval(0.9))
        let later = try signer.sign(c.request, credentials: credentials, at: Self.instant.addingTimeInterval(1))
        #expect(first.authorization == again.authorization)
        #expect(first.authorization != later.authorization)
    }
}
