using System.Runtime.InteropServices;

namespace Switch.Engine.Snapshots;

/// <summary>
/// What the process and the machine's memory manager did, counted by the kernel: read once before a restore and once
/// after, their difference names what a slow start waited on. A snapshot read cold from slow storage shows as
/// <see cref="StorageReadBytes"/> near the file's size with a low read rate; memory compaction for huge pages as
/// <see cref="CompactStall"/> (direct compaction: an allocating thread stalled) and <see cref="ThpFaultAlloc"/>; reclaim
/// under memory pressure as <see cref="AllocStall"/>. The process's own counters come from <c>getrusage</c>, the
/// machine's from <c>/proc/vmstat</c> (the whole machine: other processes' stalls count too). Null where the OS has
/// no such counter (not Linux, a kernel without it): the log says "n/a". Two small reads each time, never on a hot path.
/// </summary>
public readonly record struct MachineCounters(
    long? MajorFaults, long? MinorFaults, long? StorageReadBytes,
    long? CompactStall, long? CompactFail, long? CompactSuccess, long? ThpFaultAlloc, long? ThpFaultFallback,
    long? AllocStall, long? PgMajFault)
{
    private const string VmStatPath = "/proc/vmstat";
    /// <summary>/proc/vmstat is about 6 KiB on current kernels: a longer file is read no further (limit on everything).</summary>
    private const int MaxVmStatBytes = 64 << 10;
    private const int RusageSelf = 0;
    /// <summary><c>ru_inblock</c> counts blocks of 512 bytes, whatever the device's.</summary>
    private const long InBlockBytes = 512;

    /// <summary>struct rusage on 64-bit Linux: two timevals, then fourteen longs.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Rusage
    {
        public long UtimeSec, UtimeUsec, StimeSec, StimeUsec;
        public long MaxRss, IxRss, IdRss, IsRss, MinFlt, MajFlt, NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals, NVcsw, NIvcsw;
    }

    [DllImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static extern int GetRusage(int who, out Rusage usage);

    /// <summary>The counters now.</summary>
    public static MachineCounters Read()
    {
        long? major = null, minor = null, inBytes = null;
        if (OperatingSystem.IsLinux() && Environment.Is64BitProcess && GetRusage(RusageSelf, out Rusage usage) == 0)
        {
            major = usage.MajFlt;
            minor = usage.MinFlt;
            inBytes = usage.InBlock * InBlockBytes;
        }
        VmStat vm = ReadVmStat();
        return new MachineCounters(major, minor, inBytes, vm.CompactStall, vm.CompactFail, vm.CompactSuccess,
            vm.ThpFaultAlloc, vm.ThpFaultFallback, vm.AllocStall, vm.PgMajFault);
    }

    /// <summary>What happened between <paramref name="before"/> and this reading; a counter either lacks stays null.</summary>
    public MachineCounters Since(MachineCounters before) => new(
        Minus(MajorFaults, before.MajorFaults), Minus(MinorFaults, before.MinorFaults), Minus(StorageReadBytes, before.StorageReadBytes),
        Minus(CompactStall, before.CompactStall), Minus(CompactFail, before.CompactFail), Minus(CompactSuccess, before.CompactSuccess),
        Minus(ThpFaultAlloc, before.ThpFaultAlloc), Minus(ThpFaultFallback, before.ThpFaultFallback),
        Minus(AllocStall, before.AllocStall), Minus(PgMajFault, before.PgMajFault));

    private static long? Minus(long? after, long? before) => after is { } a && before is { } b ? a - b : null;

    private record struct VmStat(long? CompactStall, long? CompactFail, long? CompactSuccess, long? ThpFaultAlloc,
        long? ThpFaultFallback, long? AllocStall, long? PgMajFault);

    private static VmStat ReadVmStat()
    {
        var vm = new VmStat();
        string text;
        try
        {
            if (!File.Exists(VmStatPath)) return vm;
            using var reader = new StreamReader(VmStatPath);
            char[] buffer = new char[MaxVmStatBytes];
            text = new string(buffer, 0, reader.ReadBlock(buffer, 0, buffer.Length));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return vm; // a container that hides it: n/a, like a system without it
        }
        foreach (string line in text.Split('\n'))
        {
            int space = line.IndexOf(' ');
            if (space <= 0 || !long.TryParse(line.AsSpan(space + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long value)) continue;
            switch (line[..space])
            {
                case "compact_stall": vm.CompactStall = value; break;
                case "compact_fail": vm.CompactFail = value; break;
                case "compact_success": vm.CompactSuccess = value; break;
                case "thp_fault_alloc": vm.ThpFaultAlloc = value; break;
                case "thp_fault_fallback": vm.ThpFaultFallback = value; break;
                case "pgmajfault": vm.PgMajFault = value; break;
                default:
                    // One per memory zone (allocstall_dma, _dma32, _normal, _movable, _device): their sum says whether
                    // any allocation reclaimed directly.
                    if (line.StartsWith("allocstall_", StringComparison.Ordinal)) vm.AllocStall = (vm.AllocStall ?? 0) + value;
                    break;
            }
        }
        return vm;
    }
}
