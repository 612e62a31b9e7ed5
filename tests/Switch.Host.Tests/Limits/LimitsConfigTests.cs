using System.Text.Json;
using Switch.Engine.Business;
using Switch.Host.Configuration;
using Switch.Host.Gateway;

namespace Switch.Host.Tests.Limits;

/// <summary>The fair-use limits and the clearing retention come from the host configuration, refused precisely when wrong.</summary>
public sealed class LimitsConfigTests
{
    private static readonly JsonSerializerOptions Camel = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static string Json(HostConfig config) => JsonSerializer.Serialize(config, Camel);

    [Fact]
    public void Limits_given_in_the_file_are_the_limits_in_force()
    {
        HostConfig wanted = HostConfig.EmbeddedDefault() with
        {
            Limits = new GatewayLimits { RequestsPerSecond = 500, BurstRequests = 50, MaxInFlight = 64, AuthFailureBurst = 3 },
            ClearingRecordsRetentionDays = 30,
        };
        HostConfig parsed = HostConfig.Parse(Json(wanted), "limits.json");
        Assert.Equal(wanted.Limits, parsed.Limits);
        Assert.Equal(30, parsed.ClearingRecordsRetentionDays);
        Assert.Equal(GatewayLimits.Default, HostConfig.EmbeddedDefault().Limits);
    }

    [Theory]
    [InlineData("rate", "limits.requestsPerSecond: ")]
    [InlineData("inflight", "limits.maxInFlight: ")]
    [InlineData("auth", "limits.authTrackedAddresses: ")]
    [InlineData("tarpit", "limits.authDelayedPerAddress: ")]
    [InlineData("retention", "clearingRecordsRetentionDays: 0 to 3650")]
    public void A_bad_limit_is_refused_naming_the_field(string what, string expected)
    {
        HostConfig config = HostConfig.EmbeddedDefault();
        config = what switch
        {
            "rate" => config with { Limits = new GatewayLimits { RequestsPerSecond = 0 } },
            "inflight" => config with { Limits = new GatewayLimits { MaxInFlight = -5 } },
            "auth" => config with { Limits = new GatewayLimits { AuthTrackedAddresses = 0 } },
            "tarpit" => config with { Limits = new GatewayLimits { AuthDelayedPerAddress = 0 } },
            _ => config with { ClearingRecordsRetentionDays = -1 },
        };
        Assert.Contains(expected, Assert.Throws<ConfigException>(config.Validate).Message);
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(Json(config), "limits.json")).Message);
    }
}
