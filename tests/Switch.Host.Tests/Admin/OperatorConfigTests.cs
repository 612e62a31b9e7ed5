using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Grpc;
using Switch.Host.Admin;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Admin;

/// <summary>Operators in the host configuration: refused precisely when wrong; keys matched by digest.</summary>
public sealed class OperatorConfigTests
{
    private static HostConfig With(params OperatorConfig[] operators) => HostConfig.EmbeddedDefault() with { Operators = operators };

    private static OperatorConfig Op(string id, string key = "k", string role = OperatorConfig.RoleRead) =>
        new() { Id = id, KeyHash = ApiKeyHash.Of(key), Role = role };

    [Fact]
    public void The_default_configuration_has_the_demo_operator_and_viewer_with_their_printed_keys()
    {
        HostConfig config = HostConfig.EmbeddedDefault();
        Assert.Equal(("ops", OperatorConfig.RoleOperate), (config.Operators[0].Id, config.Operators[0].Role));
        Assert.Equal(("viewer", OperatorConfig.RoleRead), (config.Operators[1].Id, config.Operators[1].Role));
        Assert.Equal("demo-operator-key", config.DemoOperatorKeys["ops"]);
        Assert.Equal("demo-viewer-key", config.DemoOperatorKeys["viewer"]);
        Assert.Equal((7002, 7003), (config.AdminPort, config.AdminGrpcPort));
    }

    [Theory]
    [InlineData("{\"bank\":\"102\",\"institution\":\"ALIPAY\"}", "operators[0].scope: exactly one of \"bank\" or \"institution\"")]
    [InlineData("{}", "operators[0].scope: exactly one of \"bank\" or \"institution\"")]
    [InlineData("{\"bank\":\"12\"}", "operators[0].scope: bank: a 3-digit bank code, got '12'")]
    [InlineData("{\"bank\":\"999\"}", "operators[0].scope: bank: no bank 999 in switch.banks")]
    [InlineData("{\"institution\":\"NOPAY\"}", "operators[0].scope: institution: no institution 'NOPAY' in switch.institutions")]
    [InlineData("{\"bank\":\"102\"}", "operators[0].scope: only with the \"read\" role, got 'operate'", "operate")]
    [InlineData("{\"bnak\":\"102\"}", "bnak")]
    public void A_bad_operator_scope_is_refused_precisely(string scope, string expected, string role = OperatorConfig.RoleRead)
    {
        HostConfig config = With(Op("icbc", role: role));
        string json = System.Text.Json.JsonSerializer.Serialize(config, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase });
        Assert.Contains("\"scope\":null", json);
        json = json.Replace("\"scope\":null", "\"scope\":" + scope);
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(json, "ops.json")).Message);
    }

    [Fact]
    public void A_well_formed_scope_is_kept_and_authenticates_as_scoped()
    {
        HostConfig config = With(Op("icbc", "icbc-key") with { Scope = new OperatorScope { Bank = "102" } },
            Op("ten", "ten-key") with { Scope = new OperatorScope { Institution = "TENPAY" } });
        config.Validate();
        var auth = new OperatorAuthenticator(config.Operators);
        Assert.Equal("bank 102", auth.Authenticate("icbc-key").Scope!.ToString());
        Assert.Equal("institution TENPAY", auth.Authenticate("ten-key").Scope!.ToString());
        var e = Assert.Throws<RpcException>(() => auth.Authenticate("ten-key").RequireUnscoped("ListBanks"));
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.Contains("scoped to institution TENPAY", e.Status.Detail);
    }

    [Theory]
    [InlineData("dup", "operators[1].id: duplicate operator id 'a'")]
    [InlineData("hash", "operators[0].keyHash: the operator's key as sha256:<64 hex digits>")]
    [InlineData("role", "operators[0].role: \"read\" or \"operate\", got 'admin'")]
    [InlineData("id", "operators[0].id: 1 to 32 letters")]
    [InlineData("port", "adminPort: must differ from institutionPort")]
    public void A_bad_operator_section_is_refused_naming_the_field(string what, string expected)
    {
        HostConfig config = what switch
        {
            "dup" => With(Op("a"), Op("a", "other")),
            "hash" => With(Op("a") with { KeyHash = "sha256:xyz" }),
            "role" => With(Op("a", role: "admin")),
            "id" => With(Op("has space")),
            _ => HostConfig.EmbeddedDefault() with { AdminPort = 7001 },
        };
        var e = Assert.Throws<ConfigException>(config.Validate);
        Assert.Contains(expected, e.Message);
        // The same refusal from a file, with the source named.
        string json = System.Text.Json.JsonSerializer.Serialize(config, new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase });
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(json, "ops.json")).Message);
    }

    [Fact]
    public void Keys_are_matched_by_digest_to_the_operator_and_role()
    {
        var auth = new OperatorAuthenticator([Op("alice", "alice-key", OperatorConfig.RoleOperate), Op("bob", "bob-key")]);
        Assert.Equal(new AuthenticatedOperator("alice", OperatorRole.Operate), auth.Authenticate("alice-key"));
        Assert.Equal(new AuthenticatedOperator("bob", OperatorRole.Read), auth.Authenticate("bob-key"));
        Assert.Equal(StatusCode.Unauthenticated, Assert.Throws<RpcException>(() => auth.Authenticate("carol-key")).StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, Assert.Throws<RpcException>(() => auth.Authenticate(new string('k', 300))).StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, Assert.Throws<RpcException>(() => auth.Authenticate("")).StatusCode);
        Assert.Equal(StatusCode.PermissionDenied, Assert.Throws<RpcException>(() => auth.Authenticate("bob-key").RequireOperate("set weights")).StatusCode);
    }
}
