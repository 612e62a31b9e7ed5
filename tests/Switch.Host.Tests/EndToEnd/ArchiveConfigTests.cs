using System.Text.Json;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Engine.Archive;
using Switch.Engine.Business;
using Switch.Host.Configuration;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>
/// The archive's memory comes from the host configuration, refused precisely when wrong; and over the wire, a repeat
/// of an order that left a small retained table returns its first outcome and pays nothing twice at the bank.
/// </summary>
public sealed class ArchiveConfigTests
{
    private static readonly JsonSerializerOptions Camel = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    [Fact]
    public void The_archive_sizes_given_in_the_file_are_used()
    {
        HostConfig wanted = HostConfig.EmbeddedDefault() with { Archive = new ArchiveConfig { IndexMiB = 256, MemoryMiB = 1024, PageMiB = 4, HandoffEntries = 0 } };
        HostConfig parsed = HostConfig.Parse(JsonSerializer.Serialize(wanted, Camel), "archive.json");
        ArchiveSizing sizing = parsed.Archive.ToSizing();
        Assert.Equal((256L << 20, 1024L << 20, 4L << 20, 0), (sizing.IndexBytes, sizing.MemoryBytes, sizing.PageBytes, sizing.HandoffEntries));
        sizing.Validate();
        // Left out of the file: the engine's own defaults.
        ArchiveSizing defaults = HostConfig.EmbeddedDefault().Archive.ToSizing();
        Assert.Equal((new ArchiveSizing().PageBytes, ArchiveSizing.DefaultHandoffEntries), (defaults.PageBytes, defaults.HandoffEntries));
        defaults.Validate();
    }

    [Theory]
    [InlineData(0, 256, "archive.indexMiB: a power of two from 1 to 65536, got 0")]
    [InlineData(48, 256, "archive.indexMiB: a power of two from 1 to 65536, got 48")]
    [InlineData(64, 32, "archive.memoryMiB: a power of two from two pages (64, archive.pageMiB 32) to 65536, got 32")]
    [InlineData(64, 1 << 17, "archive.memoryMiB: a power of two from two pages (64, archive.pageMiB 32) to 65536, got 131072")]
    [InlineData(64, 2, "archive.memoryMiB: a power of two from two pages (4, archive.pageMiB 2) to 65536, got 2", 4096, 2)]
    [InlineData(64, 8, "archive.memoryMiB: a power of two from two pages (16, archive.pageMiB 8) to 65536, got 8", 4096, 8)]
    [InlineData(64, 256, "archive.pageMiB: a power of two from 1 to 64, got 0", 4096, 0)]
    [InlineData(64, 256, "archive.pageMiB: a power of two from 1 to 64, got 3", 4096, 3)]
    [InlineData(64, 1024, "archive.pageMiB: a power of two from 1 to 64, got 128", 4096, 128)]
    [InlineData(64, 256, "archive.handoffEntries: 0 or a power of two from 64 to 1048576, got 100", 100)]
    [InlineData(64, 256, "archive.handoffEntries: 0 or a power of two from 64 to 1048576, got 32", 32)]
    public void A_bad_archive_size_is_refused_naming_the_field(int indexMiB, int memoryMiB, string expected, int handoffEntries = 4096, int pageMiB = 32)
    {
        HostConfig config = HostConfig.EmbeddedDefault() with
        {
            Archive = new ArchiveConfig { IndexMiB = indexMiB, MemoryMiB = memoryMiB, PageMiB = pageMiB, HandoffEntries = handoffEntries },
        };
        Assert.Contains(expected, Assert.Throws<ConfigException>(config.Validate).Message);
        Assert.Contains(expected, Assert.Throws<ConfigException>(() => HostConfig.Parse(JsonSerializer.Serialize(config, Camel), "archive.json")).Message);
    }

    [Fact]
    public async Task A_repeat_of_an_order_that_left_memory_returns_its_first_outcome_over_the_wire()
    {
        // A table of 16: the 41 payments below push the first out to the archive (the data directory is the switch's own).
        await using RunningSwitch sw = await RunningSwitch.StartAsync(TestConfig("", rules: r => r with { TransactionCapacity = 16 }));
        TransferResult first = await sw.PayAsync(Payment("OLD-1", 4_321, account: "6222020200998877"));
        Assert.Equal(TransactionStatus.Succeeded, first.Status);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(Payment($"PUSH-{i}", 100 + i, account: $"62220202{i:D8}"))).Status);
        }
        Assert.False(sw.Host.Engine.Logic.Transactions.TryFind(first.TransactionId, out _)); // it left the retained table
        int executed = sw.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Snapshot().Count);

        TransferResult repeat = await sw.PayAsync(Payment("OLD-1", 4_321, account: "6222020200998877"));
        Assert.Equal((first.TransactionId, TransactionStatus.Succeeded, true), (repeat.TransactionId, repeat.Status, repeat.Duplicate));
        RpcException conflict = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(Payment("OLD-1", 4_322, account: "6222020200998877")));
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);
        Assert.StartsWith("DUPLICATE_ORDER_CONFLICT", conflict.Status.Detail);
        Assert.Equal(executed, sw.Host.Simulators.Select(s => s.Ledger).Distinct().Sum(l => l.Snapshot().Count));
    }
}
