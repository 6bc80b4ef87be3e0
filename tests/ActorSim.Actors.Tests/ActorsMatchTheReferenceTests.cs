using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Vfio;
using static ActorSim.Actors.Tests.Fixtures;

namespace ActorSim.Actors.Tests;

/// <summary>The actors run the same deciders as the single-threaded SyncKernel: the same seeded
/// sequence of host operations, run one at a time, gives the same errno for every operation and the
/// same decision record (inputs and outcome) for every guest access.</summary>
public class ActorsMatchTheReferenceTests() : Akka.TestKit.Xunit2.TestKit(SimHost.BaseConfig(false))
{
    private interface IHostOps
    {
        Task<(Errno, ulong)> MmapDevice(string dev, int region, ulong off, ulong len, bool shared, Prot prot, ulong? hva);
        Task<(Errno, ulong)> MmapRam(ulong len);
        Task<Errno> SetMemslot(string vm, int slot, MemslotFlags f, ulong gpa, ulong size, ulong hva);
        Task<AccessResult> Access(string vm, int vcpu, ulong gpa, AccessOp op);
        Task<Errno> Munmap(ulong a, ulong l);
        Task<Errno> Mprotect(ulong a, ulong l, Prot p);
        Task<Errno> Device(string dev, int what);
        Task<Vma[]> Vmas();
    }

    private sealed class Reference(SyncKernel k) : IHostOps
    {
        public Task<(Errno, ulong)> MmapDevice(string dev, int region, ulong off, ulong len, bool shared, Prot prot, ulong? hva) =>
            Task.FromResult((k.MmapDevice(dev, region, off, len, shared, prot, hva, out var h), h));
        public Task<(Errno, ulong)> MmapRam(ulong len) => Task.FromResult((k.MmapRam(len, null, out var h), h));
        public Task<Errno> SetMemslot(string vm, int slot, MemslotFlags f, ulong gpa, ulong size, ulong hva) => Task.FromResult(k.SetMemslot(vm, slot, f, gpa, size, hva));
        public Task<AccessResult> Access(string vm, int vcpu, ulong gpa, AccessOp op) => Task.FromResult(k.Access(vm, vcpu, gpa, op));
        public Task<Errno> Munmap(ulong a, ulong l) => Task.FromResult(k.Munmap(a, l));
        public Task<Errno> Mprotect(ulong a, ulong l, Prot p) => Task.FromResult(k.Mprotect(a, l, p));
        public Task<Errno> Device(string dev, int what) => Task.FromResult(what switch
        {
            0 => k.SetDeviceMemory(dev, false),
            1 => k.SetDeviceMemory(dev, true),
            2 => k.ResetDevice(dev),
            3 => k.SetPowerState(dev, PciPowerState.D3Hot),
            _ => k.SetPowerState(dev, PciPowerState.D0),
        });
        public Task<Vma[]> Vmas() => Task.FromResult(k.Mm.Vmas.ToArray());
    }

    private sealed class Actors(SimHost h) : IHostOps
    {
        public async Task<(Errno, ulong)> MmapDevice(string dev, int region, ulong off, ulong len, bool shared, Prot prot, ulong? hva)
        {
            var r = await h.Ask<VfioMmapResult>(h.Device(dev), new VfioMmapRegion(region, off, len, shared, prot, hva));
            return (r.Errno, r.Hva);
        }
        public async Task<(Errno, ulong)> MmapRam(ulong len)
        {
            var r = await h.Ask<MmResult>(h.Mm, new MmMapRam(len, null));
            return (r.Errno, r.Hva);
        }
        public async Task<Errno> SetMemslot(string vm, int slot, MemslotFlags f, ulong gpa, ulong size, ulong hva) =>
            (await h.Ask<KvmResult>(h.Vm(vm), new KvmSetMemslot(slot, f, gpa, size, hva))).Errno;
        public async Task<AccessResult> Access(string vm, int vcpu, ulong gpa, AccessOp op) =>
            (await h.Ask<VcpuAccessDone>(h.Vcpu(vm, vcpu), new VcpuRunAccess(gpa, op))).Result;
        public async Task<Errno> Munmap(ulong a, ulong l) => (await h.Ask<MmResult>(h.Mm, new MmMunmap(a, l))).Errno;
        public async Task<Errno> Mprotect(ulong a, ulong l, Prot p) => (await h.Ask<MmResult>(h.Mm, new MmMprotect(a, l, p))).Errno;
        public async Task<Errno> Device(string dev, int what) => (await h.Ask<VfioResult>(h.Device(dev), what switch
        {
            0 => new VfioSetMemory(false),
            1 => new VfioSetMemory(true),
            2 => new VfioReset(),
            3 => new VfioSetPower(PciPowerState.D3Hot),
            _ => (object)new VfioSetPower(PciPowerState.D0),
        })).Errno;
        public async Task<Vma[]> Vmas() => (await h.Ask<MmVmas>(h.Mm, new MmGetVmas(0, ulong.MaxValue))).Vmas;
    }

    // Gicc: vm1's GICv2 CPU interface, which KVM mapped itself (no memslot: loads and stores do not fault,
    // a fetch is an injected abort); in vm2 nothing is there.
    private const ulong Gicc = 0x801_0000;
    private static readonly ulong[] Gpas = [0x4000_0000, BarGpa, BarGpa + 0x1000, BarGpa + 0x20_7000, 0x90_0000_0000UL, 0x90_0000_0000UL + 0x3000, Gicc];

    /// <summary>One operation of the script; returns a line describing what happened.</summary>
    private static async Task<string> Step(IHostOps h, Random r)
    {
        var vm = r.Next(2) == 0 ? "vm1" : "vm2";
        switch (r.Next(10))
        {
            case 0:
            {
                var (e, hva) = await h.MmapDevice(r.Next(3) == 0 ? "gh0" : "gpu0", new[] { 0, 0, 2, 4, 6 }[r.Next(5)], (ulong)r.Next(3) * 0x1000,
                    (ulong)(1 + r.Next(8)) * MiB, r.Next(6) != 0, r.Next(3) == 0 ? Prot.Read : Prot.Read | Prot.Write, null);
                return $"mmap {e} 0x{hva:x}";
            }
            case 1:
            {
                var (e, hva) = await h.MmapRam((ulong)(1 + r.Next(4)) * MiB);
                return $"ram {e} 0x{hva:x}";
            }
            case 2 or 3:
            {
                var vmas = await h.Vmas();
                if (vmas.Length == 0) return "no vma";
                var v = vmas[r.Next(vmas.Length)];
                var flags = r.Next(5) == 0 ? MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES : r.Next(5) == 0 ? MemslotFlags.KVM_MEM_READONLY : MemslotFlags.None;
                return $"memslot {await h.SetMemslot(vm, r.Next(3), flags, new[] { 0x4000_0000UL, BarGpa, 0x90_0000_0000UL }[r.Next(3)], Math.Min(v.Length, 16 * MiB), v.Start)}";
            }
            case 4 or 5 or 6:
            {
                var a = await h.Access(vm, r.Next(2), Gpas[r.Next(Gpas.Length)] + (ulong)r.Next(3) * 0x1000, (AccessOp)r.Next(3));
                return $"access {a.Outcome} {a.Decision}";
            }
            case 7:
            {
                var vmas = await h.Vmas();
                if (vmas.Length == 0) return "no vma";
                var v = vmas[r.Next(vmas.Length)];
                return r.Next(2) == 0 ? $"munmap {await h.Munmap(v.Start, r.Next(2) == 0 ? v.Length : 0x1000)}"
                    : $"mprotect {await h.Mprotect(v.Start, v.Length, r.Next(2) == 0 ? Prot.Read : Prot.Read | Prot.Write)}";
            }
            case 8:
                return $"device {await h.Device(r.Next(4) == 0 ? "gh0" : "gpu0", r.Next(5))}";
            default:
                return $"delete {await h.SetMemslot(vm, r.Next(3), MemslotFlags.None, 0, 0, 0)}";
        }
    }

    /// <param name="mte">A host CPU with MTE, vm1 with KVM_CAP_ARM_MTE (no device memory as its memslot) and
    /// vm2 with a 36-bit IPA space (no memslot at the BAR's or the high gpa).</param>
    [Theory]
    [InlineData(1, "6.8", false)]
    [InlineData(2, "6.9", false)]
    [InlineData(3, "6.17", false)]
    [InlineData(4, "6.9", false)]
    [InlineData(5, "6.17", false)]
    [InlineData(6, "6.9", true)]
    [InlineData(7, "6.17", true)]
    public async Task Seeded_operations_give_the_same_results_through_the_actors(int seed, string kernel, bool mte)
    {
        var policy = Policy(kernel, fwb: seed % 2 == 1);
        VfioDevice[] Devices() =>
        [
            DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, true), new RegionSpec(4, 4096, BarType.Mem32, false)]),
            DeviceLayout.Build("gh0", VfioDriver.NvgraceGpu, 0, [new RegionSpec(2, 8 * MiB, BarType.Mem64, true), new RegionSpec(4, 2 * MiB, BarType.Mem64, true)]),
        ];
        KvmVm[] Vms() => [KvmVmDecider.CreateVm("vm1", 0, mte, mte).Vm!, KvmVmDecider.CreateVm("vm2", mte ? 36 : 0, false, mte).Vm!];
        var sync = new SyncKernel(policy, systemSupportsMte: mte);
        foreach (var d in Devices()) sync.AddDevice(d);
        foreach (var v in Vms()) sync.AddVm(v);
        var host = await SimHost.StartAsync(Sys, $"match-{seed}", policy, Devices(), Vms(), new SimHostOptions(SystemSupportsMte: mte));

        var gicv2 = await host.Ask<KvmResult>(host.Vm("vm1"), new KvmVgicV2MapResources(Gicc));
        Assert.Equal((Errno.None, Errno.None), (sync.VgicV2MapResources("vm1", Gicc), gicv2.Errno));
        var reference = new Reference(sync);
        var actors = new Actors(host);
        var r1 = new Random(seed);
        var r2 = new Random(seed);
        var accesses = 0;
        for (var i = 0; i < 150; i++)
        {
            var expected = await Step(reference, r1);
            var actual = await Step(actors, r2);
            Assert.Equal(expected, actual);
            if (expected.StartsWith("access Mapped", StringComparison.Ordinal)) accesses++;
        }
        Assert.True(accesses > 0, "the script mapped nothing");
        foreach (var vm in new[] { "vm1", "vm2" })
        {
            var state = await host.Ask<KvmVm>(host.Vm(vm), new KvmGetState());
            Assert.True(state.Stage2.Equals(sync.Vm(vm).Stage2), $"{vm} stage-2 tables differ");
            Assert.Equal(sync.Vm(vm).MmuInvalidateSeq, state.MmuInvalidateSeq);
        }
        Assert.Empty((await host.Ask<Violations>(host.Checker, new GetViolations())).Items);
    }
}
