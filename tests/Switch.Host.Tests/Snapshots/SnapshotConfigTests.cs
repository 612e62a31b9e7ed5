using System.Text.Json;
using Switch.Engine.Business;
using Switch.Engine.Snapshots;
using Switch.Host.Configuration;

namespace Switch.Host.Tests.Snapshots;

/// <summary>The snapshot writer's budget and nice come from the host configuration and reaches the engine; a bad one is refused
/// naming the key and the value.</summary>
public sealed class SnapshotConfigTests
{
    private static readonly JsonSerializerOptions Camel = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    [Fact]
    public void The_write_budget_given_in_the_file_reaches_the_engine_and_defaults_to_64()
    {
        Assert.Equal(64, HostConfig.EmbeddedDefault().Snapshots.ToOptions().WriteMiBPerSecond);
        HostConfig wanted = HostConfig.EmbeddedDefault() with { Snapshots = new SnapshotsConfig { WriteMiBPerSecond = 0 } };
        HostConfig parsed = HostConfig.Parse(JsonSerializer.Serialize(wanted, Camel), "snapshots.json");
        SnapshotOptions options = parsed.Snapshots.ToOptions();
        Assert.Equal(0, options.WriteMiBPerSecond); // no budget
        options.Validate();
    }

    [Fact]
    public void The_writer_nice_given_in_the_file_reaches_the_engine_and_defaults_to_10()
    {
        Assert.Equal(10, HostConfig.EmbeddedDefault().Snapshots.ToOptions().WriterNice);
        HostConfig wanted = HostConfig.EmbeddedDefault() with { Snapshots = new SnapshotsConfig { WriterNice = 19 } };
        SnapshotOptions options = HostConfig.Parse(JsonSerializer.Serialize(wanted, Camel), "snapshots.json").Snapshots.ToOptions();
        Assert.Equal(19, options.WriterNice);
        options.Validate();
    }

    [Fact]
    public void The_copy_aside_rate_given_in_the_file_reaches_the_engine_and_defaults_to_the_design_peak()
    {
        Assert.Equal(180_000, HostConfig.EmbeddedDefault().Snapshots.ToOptions().CopyAsideTransactionsPerSecond);
        HostConfig wanted = HostConfig.EmbeddedDefault() with { Snapshots = new SnapshotsConfig { CopyAsideTransactionsPerSecond = 5_000 } };
        SnapshotOptions options = HostConfig.Parse(JsonSerializer.Serialize(wanted, Camel), "snapshots.json").Snapshots.ToOptions();
        Assert.Equal(5_000, options.CopyAsideTransactionsPerSecond);
        options.Validate();
    }

    [Theory]
    [InlineData("writeMiBPerSecond", -1, "configuration: snapshots.writeMiBPerSecond: 0 (no budget) to 65536, got -1")]
    [InlineData("writeMiBPerSecond", 65537, "configuration: snapshots.writeMiBPerSecond: 0 (no budget) to 65536, got 65537")]
    [InlineData("writerNice", -1, "configuration: snapshots.writerNice: 0 (as the process) to 19, got -1")]
    [InlineData("writerNice", 20, "configuration: snapshots.writerNice: 0 (as the process) to 19, got 20")]
    [InlineData("copyAsideTransactionsPerSecond", -1, "configuration: snapshots.copyAsideTransactionsPerSecond: 0 (no ring reserve) to 100000000, got -1")]
    [InlineData("copyAsideTransactionsPerSecond", 100_000_001, "configuration: snapshots.copyAsideTransactionsPerSecond: 0 (no ring reserve) to 100000000, got 100000001")]
    public void A_bad_writer_setting_is_refused_naming_the_key_and_the_value(string key, int value, string expected)
    {
        SnapshotsConfig snapshots = key switch
        {
            "writerNice" => new SnapshotsConfig { WriterNice = value },
            "copyAsideTransactionsPerSecond" => new SnapshotsConfig { CopyAsideTransactionsPerSecond = value },
            _ => new SnapshotsConfig { WriteMiBPerSecond = value },
        };
        HostConfig config = HostConfig.EmbeddedDefault() with { Snapshots = snapshots };
        Assert.StartsWith(expected, Assert.Throws<ConfigException>(config.Validate).Message);
        Assert.StartsWith("snapshots.json: " + expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(JsonSerializer.Serialize(config, Camel), "snapshots.json")).Message);
    }
}
