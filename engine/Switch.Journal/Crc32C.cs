using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using ArmCrc32 = System.Runtime.Intrinsics.Arm.Crc32;

namespace Switch.Journal;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every journal record.
/// Hardware instructions where the CPU has them (SSE4.2 on x64, CRC32 on Arm64), a table otherwise;
/// both paths give the same value (tested), so a journal written on one machine verifies on another.
/// </summary>
public static class Crc32C
{
    private const uint ReflectedPolynomial = 0x82F63B78u;
    private static readonly uint[] Table = BuildTable();

    /// <summary>The CRC-32C of <paramref name="data"/> (initial value and final xor 0xFFFFFFFF).</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Append(Start, data));

    // The running form lets one checksum cover the header fields and the payload without copying them together.
    public const uint Start = 0xFFFFFFFFu;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Finish(uint state) => ~state;

    public static uint Append(uint state, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported) return AppendSse42X64(state, data);
        if (ArmCrc32.Arm64.IsSupported) return AppendArm64(state, data);
        return AppendSoftware(state, data);
    }

    internal static uint AppendSoftware(uint state, ReadOnlySpan<byte> data)
    {
        uint[] table = Table;
        foreach (byte b in data)
            state = table[(state ^ b) & 0xFF] ^ (state >> 8);
        return state;
    }

    // Fully optimized from the first call: a restart checksums a snapshot's few hundred MiB before the runtime's
    // background compiler, busy with the start, replaces the unoptimized first version (several times slower).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint AppendSse42X64(uint state, ReadOnlySpan<byte> data)
    {
        ulong wide = state;
        while (data.Length >= sizeof(ulong))
        {
            wide = Sse42.X64.Crc32(wide, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }
        uint narrow = (uint)wide;
        foreach (byte b in data)
            narrow = Sse42.Crc32(narrow, b);
        return narrow;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint AppendArm64(uint state, ReadOnlySpan<byte> data)
    {
        while (data.Length >= sizeof(ulong))
        {
            state = ArmCrc32.Arm64.ComputeCrc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[sizeof(ulong)..];
        }
        foreach (byte b in data)
            state = ArmCrc32.ComputeCrc32C(state, b);
        return state;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < table.Length; i++)
        {
            uint c = i;
            for (int bit = 0; bit < 8; bit++)
                c = (c & 1) != 0 ? (c >> 1) ^ ReflectedPolynomial : c >> 1;
            table[i] = c;
        }
        return table;
    }
}
