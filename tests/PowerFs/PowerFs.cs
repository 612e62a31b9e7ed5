using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Switch.Testing;

/// <summary>
/// powerfs (powerfs.c, next to this file; both are linked into the test projects that cut power) mounted on a fresh directory: a filesystem that keeps only what was made
/// durable (a file's bytes by fsync or an O_SYNC write, a directory's entries by an fsync of that directory) across a
/// simulated power cut (<see cref="CutAsync"/>). Compiled here with gcc against libfuse3 (Debian fuse3, libfuse3-dev,
/// pkg-config); <see cref="MountAsync"/> returns null, saying why, where that is not possible, and fails under CI.
/// </summary>
internal sealed partial class PowerFs : IDisposable
{
    private const int WaitMs = 30_000;
    private readonly Process _process;
    private readonly string _root;

    private PowerFs(Process process, string root, string mountPoint)
    {
        _process = process;
        _root = root;
        MountPoint = mountPoint;
    }

    public string MountPoint { get; }
    private string ControlFile => Path.Combine(MountPoint, ".powercut");

    /// <summary>What one cut threw away: directory entries never made durable, and blocks of unsynced file bytes.</summary>
    public readonly record struct Cut(long DroppedEntries, long DroppedBlocks);

    /// <summary>Builds and mounts powerfs; null (with the reason written out) where FUSE is truly unavailable, never under CI.</summary>
    public static async Task<PowerFs?> MountAsync(ITestOutputHelper output)
    {
        string? missing = !File.Exists("/dev/fuse") ? "/dev/fuse does not exist"
            : FindOnPath("gcc") is null ? "gcc is not installed"
            : FindOnPath("pkg-config") is null ? "pkg-config is not installed (apt-get install pkg-config)"
            : FindOnPath("fusermount3") is null ? "fusermount3 is not installed (apt-get install fuse3)"
            : null;
        string root = Path.Combine(Path.GetTempPath(), "switch-powerfs-" + Guid.NewGuid().ToString("N"));
        string binary = Path.Combine(root, "powerfs");
        string mountPoint = Path.Combine(root, "mnt");
        if (missing is null)
        {
            Directory.CreateDirectory(mountPoint);
            (int flagsExit, string flags) = await RunAsync("pkg-config", "--cflags", "--libs", "fuse3");
            if (flagsExit != 0) missing = "libfuse3 development files are not installed (apt-get install libfuse3-dev): " + flags;
            else
            {
                string source = Path.Combine(AppContext.BaseDirectory, "PowerFs", "powerfs.c");
                (int gccExit, string gccOutput) = await RunAsync("gcc", ["-O2", "-Wall", "-o", binary, source, .. flags.Split(' ', StringSplitOptions.RemoveEmptyEntries)]);
                Assert.True(gccExit == 0, "powerfs.c does not compile: " + gccOutput);
            }
        }
        Process? process = null;
        if (missing is null)
        {
            var info = new ProcessStartInfo(binary) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            // Foreground, single-threaded (powerfs has no locks); unmounted when it dies.
            foreach (string a in new[] { mountPoint, "-f", "-s", "-o", "auto_unmount" }) info.ArgumentList.Add(a);
            process = Process.Start(info)!;
            long deadline = Environment.TickCount64 + WaitMs;
            while (!process.HasExited && !File.Exists(Path.Combine(mountPoint, ".powercut")) && Environment.TickCount64 < deadline) await Task.Delay(50);
            if (!File.Exists(Path.Combine(mountPoint, ".powercut")))
            {
                if (!process.HasExited) process.Kill();
                await process.WaitForExitAsync();
                // A container without the right to mount: FUSE is there but cannot be used.
                missing = "powerfs could not mount: " + await process.StandardError.ReadToEndAsync();
                process.Dispose();
                process = null;
            }
        }
        if (missing is not null)
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
            // In CI a machine that cannot run the power-loss test is broken, never a pass.
            Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")), $"FUSE is unavailable ({missing}); CI must run the power-loss test");
            output.WriteLine($"SKIPPED: FUSE is unavailable ({missing}); the power-loss test did not run.");
            return null;
        }
        return new PowerFs(process!, root, mountPoint);
    }

    /// <summary>
    /// The power cut: once every file the (killed) users of the mount had open is closed, so no request of theirs is still
    /// on its way, everything not durable is thrown away.
    /// </summary>
    public async Task<Cut> CutAsync()
    {
        long deadline = Environment.TickCount64 + WaitMs;
        while (ReadState().OpenHandles > 0)
        {
            Assert.True(Environment.TickCount64 < deadline, "files on the powerfs mount stayed open: is the switch still running?");
            await Task.Delay(20);
        }
        await File.WriteAllTextAsync(ControlFile, "cut");
        (long cuts, long entries, long blocks, _) = ReadState();
        Assert.True(cuts > 0, "powerfs did not cut");
        return new Cut(entries, blocks);
    }

    private (long Cuts, long DroppedEntries, long DroppedBlocks, long OpenHandles) ReadState()
    {
        Match m = StateText().Match(File.ReadAllText(ControlFile));
        Assert.True(m.Success, "powerfs control file unreadable");
        return (long.Parse(m.Groups[1].Value), long.Parse(m.Groups[2].Value), long.Parse(m.Groups[3].Value), long.Parse(m.Groups[4].Value));
    }

    public void Dispose()
    {
        using (Process unmount = Process.Start("fusermount3", ["-u", MountPoint])) unmount.WaitForExit(WaitMs);
        if (!_process.WaitForExit(WaitMs)) _process.Kill();
        _process.Dispose();
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static async Task<(int Exit, string Output)> RunAsync(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in arguments) info.ArgumentList.Add(a);
        using Process process = Process.Start(info)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(), stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, ((await stdout) + (await stderr)).Trim());
    }

    [GeneratedRegex(@"cuts=(\d+) dropped_entries=(\d+) dropped_blocks=(\d+) open_handles=(\d+)")]
    private static partial Regex StateText();
}
