using System.Runtime.InteropServices;

namespace Switch.Engine.Snapshots;

/// <summary>
/// Lowers the calling thread's CPU priority (its nice value) for the rest of its life: the snapshot writer's, so that on a
/// machine with every core busy the scheduler neither lets the writer, just woken, preempt the logic thread that woke it
/// (measured: 8.8 ms of one 9.3 ms pause under load was the logic descheduled right after waking the writer) nor gives it
/// an equal share beside the logic and the I/O threads. Its rate is the pacer's business (<see cref="WritePacer"/>);
/// this only decides who runs first when both could.
/// Linux only: <c>setpriority(PRIO_PROCESS, tid)</c> names one thread there, and raising one's own nice needs no
/// privilege. .NET's <see cref="Thread.Priority"/> changes nothing on Linux (checked: the nice in
/// <c>/proc/self/task/&lt;tid&gt;/stat</c> stays 0 at <see cref="ThreadPriority.Lowest"/>). Elsewhere a no-op.
/// </summary>
public static class NiceThread
{
    /// <summary>The lowest priority a nice value gives.</summary>
    public const int MaxNice = 19;
    private const int PrioProcess = 0;

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    [DllImport("libc", EntryPoint = "getpriority", SetLastError = true)]
    private static extern int GetPriority(int which, int who);

    [DllImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static extern int SetPriority(int which, int who, int priority);

    /// <summary>The highest priority a nice value gives (below 0 needs <c>CAP_SYS_NICE</c> or an <c>RLIMIT_NICE</c> that allows it).</summary>
    public const int MinNice = -20;

    /// <summary>Sets thread <paramref name="tid"/>'s nice to <paramref name="nice"/>; false where nothing was changed (not
    /// Linux, or the kernel refused: a nice below 0 without the privilege; the thread then runs as before).</summary>
    public static bool TrySet(int tid, int nice)
    {
        if (nice is < MinNice or > MaxNice) throw new ArgumentOutOfRangeException(nameof(nice), nice, $"{MinNice} to {MaxNice}");
        if (tid <= 0) throw new ArgumentOutOfRangeException(nameof(tid), tid, "a thread's kernel id");
        return OperatingSystem.IsLinux() && SetPriority(PrioProcess, tid, nice) == 0;
    }

    /// <summary>The calling thread's id in the kernel (its <c>/proc/self/task</c> entry); 0 where there is none to name.</summary>
    public static int CurrentThreadId() => OperatingSystem.IsLinux() ? GetTid() : 0;

    /// <summary>Raises the calling thread's nice by <paramref name="increment"/> (capped at <see cref="MaxNice"/>); returns
    /// its nice after, or null where nothing was changed (not Linux, an increment of 0, or the kernel refused: the thread
    /// then runs as before, only the scheduling differs).</summary>
    public static int? LowerCurrent(int increment)
    {
        if (increment is < 0 or > MaxNice * 2) throw new ArgumentOutOfRangeException(nameof(increment), increment, $"0 to {MaxNice * 2}");
        if (increment == 0 || !OperatingSystem.IsLinux()) return null;
        int tid = GetTid();
        // getpriority returns the nice itself, -1 included: errno (cleared by the runtime before the call) tells an error.
        int now = GetPriority(PrioProcess, tid);
        if (now == -1 && Marshal.GetLastPInvokeError() != 0) return null;
        int wanted = Math.Min(MaxNice, now + increment);
        return SetPriority(PrioProcess, tid, wanted) == 0 ? wanted : null;
    }
}
