using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Switch.Ring;

/// <summary>
/// Spins on the barrier without ever giving up the core: the lowest latency, but it burns a whole
/// core per waiting consumer. Use only with a core to spare for each consumer.
/// </summary>
public sealed class BusySpinWaitStrategy : IWaitStrategy
{
    public bool RequiresSignal => false;

    public long WaitFor(long sequence, SequenceBarrier barrier)
    {
        long available;
        while ((available = barrier.HighestAvailable(sequence)) < sequence)
        {
            if (barrier.ShouldStopWaiting())
            {
                return available;
            }
            CpuPause();
        }
        return available;
    }

    public void Signal()
    {
    }

    // A pause hint, not a yield: it tells the CPU this is a spin loop, which frees pipeline
    // resources for a hyper-threaded sibling (often the producer) and avoids the memory-order
    // mis-speculation flush when the awaited line finally changes. Tens of cycles at most.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CpuPause()
    {
        if (X86Base.IsSupported)
        {
            X86Base.Pause();
        }
        else if (ArmBase.IsSupported)
        {
            ArmBase.Yield();
        }
    }
}
