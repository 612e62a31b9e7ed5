namespace Switch.Host.Cluster;

/// <summary>
/// One part of a node's graceful stop, waited for at most a limit: a part that cannot finish (an engine whose stop
/// snapshot waits on a held logic, a stream nobody ends) is logged by name and left, and the stop goes on. Safe because
/// every acknowledged payment is in the journal on disk already: a stop without its snapshot loses nothing, the next
/// start replays more.
/// </summary>
internal static class StopPart
{
    /// <summary>Runs <paramref name="stop"/> and waits for it up to <paramref name="limitMs"/>; true when it finished
    /// (its own failure is thrown), false when it was left unfinished (logged <c>stop_part_abandoned</c>). Started on
    /// the thread pool: a part that blocks before its first await (an engine's synchronous close) cannot hold the wait.</summary>
    public static async Task<bool> WaitAsync(Log log, string name, Func<Task> stop, int limitMs)
    {
        if (limitMs <= 0) throw new ArgumentOutOfRangeException(nameof(limitMs), $"a stop part's limit must be positive, got {limitMs}");
        Task part = Task.Run(stop);
        using var limit = new CancellationTokenSource();
        if (await Task.WhenAny(part, Task.Delay(limitMs, limit.Token)) == part)
        {
            await limit.CancelAsync();
            await part;
            return true;
        }
        // Observed, so a late failure of the part left behind is not an unobserved task exception.
        _ = part.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        log.Alert("stop_part_abandoned", $"the stop left {name} unfinished after {limitMs} ms and goes on: the journal holds every acknowledged " +
            "payment on disk, so a stop without its snapshot loses nothing (the next start replays from the journal)", ("part", name), ("limit_ms", limitMs));
        return false;
    }
}
