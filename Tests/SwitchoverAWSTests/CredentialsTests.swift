import Foundation
import SwitchoverAWS
import SwitchoverTestKit
import Testing

/// Credentials as every AWS tool resolves them, from an environment and files the test makes.
@Suite struct CredentialsTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=="

    static func credentialsFile(_ text: String) throws -> (folder: URL, path: String) {
        let folder = try TemporaryDirectory.make("aws-credentials")
        let file = folder.appendingPathComponent("credentials")
        try Data(text.utf8).write(to: file)
        return (folder, file.path)
    }

    @Test("the environment comes first, with its session token")
    func environment() throws {
        let (_, path) = try Self.credentialsFile("[default]\naws_access_key_id = AKIAFROMFILE\naws_secret_access_key = file\n")
        let credentials = try AWSCredentials.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "ASIAFROMENVIRONMENT", "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SESSION_TOKEN": Self.token,
            "AWS_SHARED_CREDENTIALS_FILE": path,
        ])
        #expect(credentials.accessKeyId == "ASIAFROMENVIRONMENT")
        #expect(credentials.sessionToken != nil)
        #expect(credentials.source == "environment")
        let legacy = try AWSCredentials.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "ASIA1", "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_SECURITY_TOKEN": Self.token,
        ])
        #expect(legacy.sessionToken != nil)
    }

    @Test("half of the environment's pair is an error naming the missing half")
    func halfAPair() {
        let error = #expect(throws: AWSError.self) {
            _ = try AWSCredentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIA1"], homeDirectory: "/nonexistent")
        }
        #expect(error?.kind == .credentials)
        #expect(error?.message.contains("AWS_SECRET_ACCESS_KEY is not") == true)
    }

    @Test("AWS_PROFILE in AWS_SHARED_CREDENTIALS_FILE, comments, blanks and case as botocore reads them")
    func profileFile() throws {
        let (_, path) = try Self.credentialsFile("""
            # comment
            [default]
            aws_access_key_id = AKIADEFAULT
            aws_secret_access_key = default-secret

            [ switchover ]
            ; another comment
            AWS_ACCESS_KEY_ID=ASIAPROFILE
            aws_secret_access_key =   \(Self.secret)
            aws_session_token = \(Self.token)
            """)
        let named = try AWSCredentials.resolve(environment: ["AWS_PROFILE": "switchover", "AWS_SHARED_CREDENTIALS_FILE": path])
        #expect(named.accessKeyId == "ASIAPROFILE")
        #expect(named.sessionToken != nil)
        #expect(named.source == "profile 'switchover' in \(path)")
        let signed = try SigV4Signer(service: "sts", region: "us-east-1").sign(
            AWSRequest(method: "GET", endpoint: "https://sts.amazonaws.com"), credentials: named, at: Date(timeIntervalSince1970: 0))
        let same = try SigV4Signer(service: "sts", region: "us-east-1").sign(
            AWSRequest(method: "GET", endpoint: "https://sts.amazonaws.com"),
            credentials: AWSCredentials(accessKeyId: "ASIAPROFILE", secretAccessKey: Self.secret, sessionToken: Self.token),
            at: Date(timeIntervalSince1970: 0))
        #expect(signed.authorization == same.authorization, "the file's secret and token are read exactly")

        let standard = try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": path])
        #expect(standard.accessKeyId == "AKIADEFAULT")
        #expect(standard.sessionToken == nil)
    }

    @Test("~/.aws/credentials under HOME is the default file")
    func defaultFile() throws {
        let home = try TemporaryDirectory.make("aws-home")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        try Data("[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=home\n".utf8)
            .write(to: home.appendingPathComponent(".aws/credentials"))
        #expect(try AWSCredentials.resolve(environment: ["HOME": home.path]).accessKeyId == "AKIAHOME")
        #expect(try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": "~/.aws/credentials"],
                                           homeDirectory: home.path).accessKeyId == "AKIAHOME")
    }

    @Test("missing credentials: the error says where it looked")
    func missing() throws {
        let noFile = #expect(throws: AWSError.self) {
            _ = try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials"])
        }
        #expect(noFile?.kind == .credentials)
        #expect(noFile?.message.contains("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set") == true)
        #expect(noFile?.message.contains("/nonexistent/credentials does not exist") == true)
        #expect(noFile?.message.contains("profile 'default'") == true)

        let (_, path) = try Self.credentialsFile("[default]\naws_access_key_id=A\naws_secret_access_key=B\n[other]\n")
        let noProfile = #expect(throws: AWSError.self) {
            _ = try AWSCredentials.resolve(environment: ["AWS_PROFILE": "prod", "AWS_SHARED_CREDENTIALS_FILE": path])
        }
        #expect(noProfile?.message.contains("\(path) has no profile 'prod' (it has: default, other)") == true)
        let noSecret = #expect(throws: AWSError.self) {
            _ = try AWSCredentials.resolve(environment: ["AWS_PROFILE": "other", "AWS_SHARED_CREDENTIALS_FILE": path])
        }
        #expect(noSecret?.message.contains("profile 'other' in \(path) has no aws_access_key_id") == true)
    }

    @Test("the secret and the token never show: description, debugDescription, dump, interpolation, Mirror")
    func redaction() throws {
        let credentials = AWSCredentials(accessKeyId: "ASIAEXAMPLEKEY123456", secretAccessKey: Self.secret, sessionToken: Self.token)
        var dumped = ""
        dump(credentials, to: &dumped)
        let shown = [
            credentials.description, credentials.debugDescription, "\(credentials)", String(reflecting: credentials), dumped,
            "\(credentials.secretAccessKey)", String(reflecting: credentials.secretAccessKey), "\(credentials.sessionToken!)",
            "\(Mirror(reflecting: credentials).children.map { "\($0.label ?? ""): \($0.value)" })",
        ]
        for text in shown {
            #expect(!text.contains(Self.secret), "\(text)")
            #expect(!text.contains(Self.token), "\(text)")
            #expect(!text.contains("wJalr") && !text.contains("IQoJ"), "\(text)")
        }
        #expect(credentials.description == "ASIA…3456 from given (session token)")
        #expect(dumped.contains("<redacted>"))
        // The signed headers print redacted too.
        let signature = try SigV4Signer(service: "route53", region: "us-east-1")
            .sign(AWSRequest(method: "GET", endpoint: "https://route53.amazonaws.com"), credentials: credentials, at: Date())
        #expect(!"\(signature.headers)".contains(Self.token))
        #expect(!"\(signature.headers)".contains(signature.signature))
        var dumpedSignature = ""
        dump(signature, to: &dumpedSignature)
        for text in ["\(signature)", String(reflecting: signature), dumpedSignature] {
            #expect(!text.contains(Self.token) && !text.contains(signature.signature), "\(text)")
        }
    }
}
