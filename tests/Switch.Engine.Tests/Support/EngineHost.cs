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

    /// <summary>Copies a directory tree as it is on disk now: what a crash at this instant would leave behind.</summary>
    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(dir.Replace(from, to));
        }
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            if (System.IO.Path.GetFileName(file) == "lock") continue; // a crashed process holds no lock
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var target = new FileStream(file.Replace(from, to), FileMode.Create, FileAccess.Write);
            source.CopyTo(target);
        }
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
    };
}
