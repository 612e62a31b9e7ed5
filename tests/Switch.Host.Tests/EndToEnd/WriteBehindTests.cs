using System.Runtime.InteropServices;
using Switch.Engine.Business;
using Switch.Engine.Clearing;
using Switch.Host.Configuration;
using Switch.Journal;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The switch starts the writeback of its outcome feeds and clearing records as they grow (<c>writeBehindBytes</c>,
/// <see cref="WriteBehind"/>): behind the last <c>writeBehindBytes</c> of each file, the kernel's page cache holds no dirty
/// page, and before the last <see cref="WriteBehind.KeptCachedBytes"/> of that it holds none at all (read with
/// <c>cachestat</c>, Linux 6.5 and later); the key's limits are refused precisely.</summary>
public sealed class WriteBehindTests : WithDataDirectory
{
    [Fact]
    public async Task A_feed_and_a_records_file_appended_past_the_bound_keep_no_dirty_page_behind_it()
    {
        Directory.CreateDirectory(Data);
        // tmpfs has no writeback (its pages stay dirty): nothing to check there; so is a system without cachestat.
        if (!OperatingSystem.IsLinux() || new DriveInfo(Data).DriveFormat == "tmpfs") return;
        const long behindBytes = 256 << 10;
        const int payments = 20_000; // 3.7 MiB of feed records, 2.4 MiB of clearing records: 15 and 9 times the bound
        HostConfig config = TestConfig(Data) with { WriteBehindBytes = behindBytes };
        await using RunningSwitch running = await RunningSwitch.StartAsync(config, Data);
        Assert.Equal(behindBytes, running.Host.WriteBehind.BehindBytes);
        await OutcomeFeedTests.PayOnAStreamAsync(running, payments);
        Assert.True(running.Host.WriteBehind.Drain(timeoutMs: 30_000), "the writeback thread did not start the ranges handed to it");
        Assert.Equal(0, running.Host.WriteBehind.Failures);

        string feed = Directory.GetFiles(Path.Combine(Data, "feeds", "0000")).Single();
        string records = Path.Combine(ClearingFiles.FirstBatchDirectory(Data)!, ClearingFiles.RecordsFile);
        // The feed is flushed at each output batch's end; the records file keeps up to its 64 KiB buffer in the process.
        foreach ((string path, long unhandedBytes) in new[] { (feed, behindBytes + 4096), (records, behindBytes + (64 << 10) + 4096) })
        {
            long lengthBytes = new FileInfo(path).Length;
            Assert.True(lengthBytes > 8 * behindBytes, $"{path}: {lengthBytes} bytes");
            PageCacheState? behind = PageCacheState.Of(path, 0, lengthBytes - unhandedBytes);
            if (behind is null) return; // no cachestat on this kernel
            Assert.True(behind.Value.DirtyPages == 0, $"{path}: {behind.Value.DirtyPages} dirty pages of {behind.Value.CachedPages} in the " +
                $"{lengthBytes - unhandedBytes} bytes more than the bound behind its end: their writeback was not started");
            // The live tail stays for followers: the range handed last is cached.
            PageCacheState tail = PageCacheState.Of(path, lengthBytes - unhandedBytes - behindBytes, behindBytes)!.Value;
            Assert.True(tail.CachedPages > 0, $"{path}: none of the range handed last is in the page cache");
            // The last range handed began at most a range (the bound and one flush) before the end handed: the pages before
            // the kept bytes behind that were dropped once it was handed. A page still being written back then stays, so
            // a range's pages are allowed (they had 4 ranges' time); without the drop every page of it is cached.
            long droppedBytes = lengthBytes - 2 * unhandedBytes - running.Host.WriteBehind.KeptCachedBytes;
            Assert.True(droppedBytes >= behindBytes, $"{path}: {lengthBytes} bytes leave too little before the kept tail");
            PageCacheState old = PageCacheState.Of(path, 0, droppedBytes)!.Value;
            Assert.True(old.CachedPages <= behindBytes / 4096, $"{path}: {old.CachedPages} pages cached of the first {droppedBytes} bytes, " +
                $"more than {running.Host.WriteBehind.KeptCachedBytes} bytes before the last range handed: they were not dropped");
        }
        Assert.True(running.Host.WriteBehind.BytesStarted >= payments * 320L - 2 * (behindBytes + (64 << 10) + 4096));
    }

    [Fact]
    public void The_bound_is_0_or_64_KiB_to_1_GiB_and_anything_else_is_refused_naming_the_key()
    {
        HostConfig config = TestConfig(Data);
        Assert.Equal(HostConfig.DefaultWriteBehindBytes, config.WriteBehindBytes);
        foreach (long good in new[] { 0L, 64 << 10, 1L << 30, HostConfig.DefaultWriteBehindBytes }) (config with { WriteBehindBytes = good }).Validate();
        foreach (long bad in new[] { -1L, 1, (64 << 10) - 1, (1L << 30) + 1, long.MaxValue })
        {
            ConfigException refused = Assert.Throws<ConfigException>((config with { WriteBehindBytes = bad }).Validate);
            Assert.Equal($"configuration: writeBehindBytes: 0 (off) or 65536 to 1073741824, got {bad}", refused.Message);
        }
        // In a file, under its name: a good value reaches the host's configuration, a bad one is refused naming the file.
        var camel = new System.Text.Json.JsonSerializerOptions { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase };
        HostConfig wanted = HostConfig.EmbeddedDefault() with { WriteBehindBytes = 8 << 20 };
        Assert.Equal(8 << 20, HostConfig.Parse(System.Text.Json.JsonSerializer.Serialize(wanted, camel), "switch.json").WriteBehindBytes);
        string json = System.Text.Json.JsonSerializer.Serialize(wanted with { WriteBehindBytes = 4096 }, camel);
        Assert.Contains("\"writeBehindBytes\":4096", json);
        Assert.Equal("switch.json: configuration: writeBehindBytes: 0 (off) or 65536 to 1073741824, got 4096",
            Assert.Throws<ConfigException>(() => HostConfig.Parse(json, "switch.json")).Message);
    }
}

/// <summary>A file range's pages in the page cache, dirty ones among them: Linux's <c>cachestat</c> (6.5 and later).</summary>
internal readonly record struct PageCacheState(long CachedPages, long DirtyPages, long WritebackPages)
{
    /// <summary>Null where the system has no <c>cachestat</c>.</summary>
    public static unsafe PageCacheState? Of(string path, long offset, long bytes)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var range = new Range { Offset = (ulong)offset, Bytes = (ulong)bytes };
        var stat = default(Stat);
        const long SysCachestat = 451; // the same number on every architecture (the generic table)
        if (syscall(SysCachestat, (int)file.SafeFileHandle.DangerousGetHandle(), &range, &stat, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            const int ENOSYS = 38;
            if (errno == ENOSYS) return null;
            throw new IOException($"cachestat({path}) failed, errno {errno}");
        }
        return new PageCacheState((long)stat.Cache, (long)stat.Dirty, (long)stat.Writeback);
    }

    private struct Range { public ulong Offset, Bytes; }

    private struct Stat { public ulong Cache, Dirty, Writeback, Evicted, RecentlyEvicted; }

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe long syscall(long number, int fd, Range* range, Stat* stat, uint flags);
}
