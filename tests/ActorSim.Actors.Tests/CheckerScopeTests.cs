using ActorSim.Domain.Kernel;
using ActorSim.Domain;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Vfio;
using ActorSim.Domain.Simulation;
using Akka.Actor;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>The checker rechecks after a change only the leaves the change can reach (Invariants.CheckUserRange,
/// the leaves over device memory): a bad leaf there must still be found.</summary>
public class CheckerScopeTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private const ulong BarGpa = 0x80_0000_0000UL;

    /// <summary>A VM that mapped gpu0's BAR, then the device's memory disabled, with what the kernel
    /// does to the mapping on that left out (<paramref name="leaveOut"/>), fed to a checker.</summary>
    private async Task<string[]> Violations(Func<LoggedEvent, bool> leaveOut)
    {
        var k = new SyncKernel(Policy("6.9"));
        k.AddDevice(Gpu());
        k.AddVm(KvmVm.Create("vm1"));
        Assert.Equal(Errno.None, k.MmapDevice("gpu0", 0, 0, 16 * MiB, true, Prot.Read | Prot.Write, null, out var barHva));
        Assert.Equal(Errno.None, k.SetMemslot("vm1", 1, MemslotFlags.None, BarGpa, 16 * MiB, barHva));
        Assert.Equal(FaultResult.Mapped, k.Access("vm1", 0, BarGpa + 0x3000, AccessOp.Read).Outcome.Result);
        var before = k.Log.Count;
        Assert.Equal(Errno.None, k.SetDeviceMemory("gpu0", false));
        Assert.Contains(k.Log.Skip(before), e => e.Event is VfioMemoryToggled { Enabled: false });

        var checker = Sys.ActorOf(InvariantChecker.Props("t/invariants", k.Policy, SyncKernel.MmStream,
            new Dictionary<string, Domain.Vfio.VfioDevice> { [SyncKernel.DeviceStream("gpu0")] = Gpu() },
            new Dictionary<string, KvmVm> { [SyncKernel.VmStream("vm1")] = KvmVm.Create("vm1") }));
        foreach (var e in k.Log.Where((e, i) => i < before || !leaveOut(e))) checker.Tell(new DomainEventPublished(e.Stream, e.Event));
        var found = await checker.Ask<Violations>(new GetViolations(), TimeSpan.FromSeconds(5));
        return [.. found.Items.Select(v => v.Violation.Invariant)];
    }

    [Fact]
    public async Task A_device_leaf_left_when_the_device_stops_decoding_is_found_and_a_correct_kernel_leaves_none()
    {
        Assert.Empty(await Violations(_ => false));
        // Neither the PTEs zapped nor the leaf unmapped: only the device's own event shows it (I6).
        Assert.Contains("I6", await Violations(e => e.Event is not VfioMemoryToggled));
    }
}
