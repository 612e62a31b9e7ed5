using System.Text.Json;
using Switch.Engine.Business;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.Limits;

/// <summary>The engine's input and output rings are sized by the host configuration (a test's switch small, production's
/// as before), refused precisely when wrong.</summary>
public sealed class RingSizeConfigTests
{
    private static readonly JsonSerializerOptions Camel = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    [Fact]
    public async Task The_ring_sizes_in_the_file_are_the_engines_and_the_default_is_65536()
    {
        Assert.Equal((65_536, 65_536), (HostConfig.EmbeddedDefault().InputRingSize, HostConfig.EmbeddedDefault().OutputRingSize));
        HostConfig wanted = TestConfig("rings-data") with { InputRingSize = 1 << 12, OutputRingSize = 1 << 13 };
        HostConfig parsed = HostConfig.Parse(JsonSerializer.Serialize(wanted, Camel), "rings.json");
        Assert.Equal((1 << 12, 1 << 13), (parsed.InputRingSize, parsed.OutputRingSize));

        await using RunningSwitch sw = await StartAsync(wanted);
        Assert.Equal((1 << 12, 1 << 13), (sw.Host.Engine.InputCapacity, sw.Host.Engine.OutputCapacity));
        Assert.Equal(Contracts.V1.TransactionStatus.Succeeded, (await sw.PayAsync(Payment("RING-1", 1_00))).Status);
    }

    [Theory]
    [InlineData(2048, 65_536, "inputRingSize: a power of two from 4096 to 16777216, got 2048")]
    [InlineData(65_535, 65_536, "inputRingSize: a power of two from 4096 to 16777216, got 65535")]
    [InlineData(65_536, 1 << 25, "outputRingSize: a power of two from 4096 to 16777216, got 33554432")]
    [InlineData(65_536, 0, "outputRingSize: a power of two from 4096 to 16777216, got 0")]
    public void A_bad_ring_size_is_refused_naming_the_field(int input, int output, string expected)
    {
        HostConfig config = HostConfig.EmbeddedDefault() with { InputRingSize = input, OutputRingSize = output };
        Assert.Contains(expected, Assert.Throws<ConfigException>(config.Validate).Message);
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(JsonSerializer.Serialize(config, Camel), "rings.json")).Message);
    }
}
