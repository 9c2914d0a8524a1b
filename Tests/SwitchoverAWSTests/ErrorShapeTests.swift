import Foundation
import SwitchoverNet
import Testing
@testable import SwitchoverAWS

/// AWS's error answers in every shape the client meets, as bytes (the live tests meet them from
/// moto; these pin the shapes moto does not produce, and the classification table).
@Suite struct ErrorShapeTests {
    static func answer(_ status: Int, _ body: String, headers: [HTTPHeader] = []) -> AWSError {
        AWSClient.error(from: HTTPResponse(status: status, headers: headers, body: Data(body.utf8), totalTime: .zero))
    }

    @Test("AWS's <ErrorResponse><Error>, moto's Route53 <ErrorResponse><Errors><Error>, ELBv2's namespaced root, EC2's <Response>, S3's <Error>")
    func xmlShapes() {
        let aws = Self.answer(400, """
            <?xml version="1.0"?>
            <ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>Throttling</Code>
            <Message>Rate exceeded</Message></Error><RequestId>a1b2</RequestId></ErrorResponse>
            """)
        #expect(aws.kind == .throttled && aws.code == "Throttling" && aws.message == "Rate exceeded" && aws.requestId == "a1b2")

        let moto = Self.answer(403, """
            <?xml version="1.0" encoding="utf-8"?>
            <ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>
            """)
        #expect(moto.kind == .authentication && moto.code == "SignatureDoesNotMatch" && moto.httpStatus == 403)

        let elb = Self.answer(400, """
            <elb:ErrorResponse xmlns:elb="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><elb:Error><elb:Type>Sender</elb:Type><elb:Code>TargetGroupNotFound</elb:Code><elb:Message>One or more target groups not found</elb:Message></elb:Error><elb:RequestId>r-1</elb:RequestId></elb:ErrorResponse>
            """)
        #expect(elb.kind == .notFound && elb.code == "TargetGroupNotFound" && elb.requestId == "r-1")

        let ec2 = Self.answer(503, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>e-1</RequestID></Response>")
        #expect(ec2.kind == .throttled && ec2.requestId == "e-1")

        let s3 = Self.answer(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
        #expect(s3.kind == .throttled, "a 503 SlowDown is throttling, not an outage")

        let batch = Self.answer(400, """
            <InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Messages><Message>Tried to create resource record set but it already exists</Message><Message>second</Message></Messages><RequestId>b-1</RequestId></InvalidChangeBatch>
            """)
        #expect(batch.kind == .other && batch.code == "InvalidChangeBatch")
        #expect(batch.message == "Tried to create resource record set but it already exists; second")
    }

    @Test("JSON bodies, x-amzn-ErrorType, and bodiless answers")
    func otherShapes() {
        let json = Self.answer(400, #"{"__type":"com.amazonaws.sts#ExpiredTokenException","message":"The security token included in the request is expired"}"#)
        #expect(json.kind == .authentication && json.code == "ExpiredTokenException")
        let header = Self.answer(400, "", headers: [HTTPHeader("x-amzn-ErrorType", "ThrottlingException:http://internal.amazon.com/")])
        #expect(header.kind == .throttled && header.code == "ThrottlingException")
        #expect(Self.answer(429, "").kind == .throttled)
        #expect(Self.answer(502, "<html>bad gateway</html>").kind == .unavailable)
        #expect(Self.answer(403, "").kind == .authentication)
        let unknown = Self.answer(400, "not xml at all")
        #expect(unknown.kind == .other && unknown.message.contains("not xml at all"))
    }

    @Test("the classification table", arguments: [
        ("SignatureDoesNotMatch", 403, AWSError.Kind.authentication), ("InvalidClientTokenId", 403, .authentication),
        ("AccessDenied", 403, .authentication), ("UnrecognizedClientException", 400, .authentication),
        ("IncompleteSignature", 400, .authentication), ("ExpiredToken", 400, .authentication),
        ("Throttling", 400, .throttled), ("ThrottlingException", 400, .throttled), ("PriorRequestNotComplete", 400, .throttled),
        ("RequestLimitExceeded", 503, .throttled), ("NoSuchHostedZone", 404, .notFound), ("ListenerNotFound", 400, .notFound),
        ("TargetGroupNotFound", 400, .notFound), ("NoSuchChange", 404, .notFound), ("InternalFailure", 500, .unavailable),
        ("ServiceUnavailable", 503, .unavailable), ("InvalidInput", 400, .other), ("ValidationError", 400, .other),
    ])
    func classification(code: String, status: Int, kind: AWSError.Kind) {
        #expect(AWSError.classify(code: code, httpStatus: status) == kind)
    }

    @Test("backoff doubles from the base, is capped, and keeps at least half of each step")
    func backoff() {
        let policy = AWSClient.RetryPolicy(maxRetries: 5, baseDelay: .milliseconds(100), maxDelay: .milliseconds(500))
        #expect(policy.delay(beforeRetry: 1, unit: 0) == .milliseconds(50))
        #expect(policy.delay(beforeRetry: 1, unit: 1) == .milliseconds(100))
        #expect(policy.delay(beforeRetry: 2, unit: 0) == .milliseconds(100))
        #expect(policy.delay(beforeRetry: 3, unit: 0.5) == .milliseconds(300))
        #expect(policy.delay(beforeRetry: 4, unit: 1) == .milliseconds(500))
        #expect(policy.delay(beforeRetry: 60, unit: 1) == .milliseconds(500))
    }

    @Test("plain http is allowed to loopback only; https anywhere")
    func endpoints() {
        for allowed in ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000", "https://route53.amazonaws.com",
                        "https://vpce-1.route53.us-east-1.vpce.amazonaws.com"] {
            #expect(throws: Never.self) { try AWSClient.checkEndpoint(allowed) }
        }
        for refused in ["http://route53.amazonaws.com", "http://10.0.0.5:5000", "ftp://127.0.0.1", "127.0.0.1:5000", "http://"] {
            #expect(throws: AWSError.self, "\(refused)") { try AWSClient.checkEndpoint(refused) }
        }
    }

    @Test("a change batch Route53 would refuse is refused here first")
    func changeValidation() {
        func set(weight: Int? = 1, id: String? = "blue", ttl: Int? = 60, values: [String] = ["x"]) -> [Route53Change] {
            [Route53Change(.upsert, Route53RecordSet(name: "a.example.com.", type: "CNAME", setIdentifier: id, weight: weight,
                                                     ttl: ttl, values: values))]
        }
        #expect(throws: Never.self) { try Route53Client.validate(set()) }
        #expect(throws: Never.self) { try Route53Client.validate(set(weight: 0)) }
        #expect(throws: Never.self) { try Route53Client.validate(set(weight: 255)) }
        for bad in [set(weight: 256), set(weight: -1), set(id: nil), set(id: ""), set(ttl: nil), set(values: []), []] {
            #expect(throws: AWSError.self) { try Route53Client.validate(bad) }
        }
    }

    @Test("XML: entities, CDATA, comments, self-closing elements, prefixes; malformed input is an error")
    func xml() throws {
        let root = try XMLElement.parse(Data("""
            \u{FEFF}<?xml version="1.0"?><!-- c --><a:Root xmlns:a="urn:x"><a:V>x &amp; y &lt;&#65;&#x42;&gt;</a:V>
            <Empty/><C><![CDATA[<raw & kept>]]></C></a:Root>
            """.utf8))
        #expect(root.name == "Root")
        #expect(root.string("V") == "x & y <AB>")
        #expect(root.child("Empty") != nil)
        #expect(root.string("C") == "<raw & kept>")
        for bad in ["<a><b></a>", "<a>", "<!DOCTYPE x><a/>", "<a>&bogus;</a>", "<a/><b/>", ""] {
            #expect(throws: XMLError.self, "\(bad)") { _ = try XMLElement.parse(Data(bad.utf8)) }
        }
    }
}
