using System.Collections.Concurrent;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Ring;

namespace Switch.Engine.Tests.Support;

/// <summary>Collects what the running engine hands out, on the output thread, for the test thread to read.</summary>
public sealed class OutputRecorder : IEventHandler<OutputEvent>
{
    public readonly ConcurrentQueue<OutputEvent> Outputs = new();
    public void OnEvent(ref OutputEvent evt, long sequence, bool endOfBatch) => Outputs.Enqueue(evt);

    public List<OutputEvent> Drain()
    {
        var list = new List<OutputEvent>();
        while (Outputs.TryDequeue(out OutputEvent o)) list.Add(o);
        return list;
    }
}

/// <summary>A temporary data directory, removed afterwards.</summary>
public sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "switch-test-" + Guid.NewGuid().ToString("N"));

    public TempDirectory() => Directory.CreateDirectory(Path);

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>
    /// Copies a directory tree as it is on disk now: what a crash at this instant would leave behind. Metadata
    /// (commit records, manifest) is copied before log data, so the copy's log holds at least what its commit
    /// records promise, as on a real disk; a metadata file that vanishes mid-copy (superseded) restarts that pass.
    /// </summary>
    public static void CopyTree(string from, string to)
    {
        static bool IsLogData(string file) => file.Contains($"{System.IO.Path.DirectorySeparatorChar}log{System.IO.Path.DirectorySeparatorChar}");
        for (int attempt = 0; ; attempt++)
        {
            if (CopyFiles(from, to, file => !IsLogData(file))) break;
            if (attempt == 20) throw new IOException("metadata kept changing while copying");
        }
        CopyFiles(from, to, IsLogData);
    }

    private static bool CopyFiles(string from, string to, Func<string, bool> which)
    {
        bool complete = true;
        string[] files;
        try
        {
            files = Directory.GetFiles(from, "*", SearchOption.AllDirectories);
        }
        catch (DirectoryNotFoundException)
        {
            return false; // a directory removed while listed (the archive's checkpoint warm-up is a throwaway)
        }
        foreach (string file in files.Where(which))
        {
            if (System.IO.Path.GetFileName(file) == "lock") continue; // a crashed process holds no lock
            string target = to + file[from.Length..];
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            try
            {
                using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var sink = new FileStream(target, FileMode.Create, FileAccess.Write);
                source.CopyTo(sink);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                complete = false;
            }
        }
        return complete;
    }
}

public static class EngineTestOptions
{
    public static EngineOptions For(string dataDirectory, IClock clock) => new()
    {
        DataDirectory = dataDirectory,
        InputRingSize = 1024,
        OutputRingSize = 1024,
        MaxBatchSize = 256,
        TickIntervalMs = 0,
        Clock = clock,
        Wait = WaitKind.Blocking,
        // A small archive: evicted transactions reach its disk pages in tests, and many engines start at once.
        Archive = Switch.Engine.Archive.ArchiveSizing.Small,
        VerifyInvariants = true,
    };
}
