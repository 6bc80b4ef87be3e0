// docs/testkit.md quotes this file from "// guide:begin" to "// guide:end"; a test below checks that it
// still does, so the guide's example is code that compiles and passes.
// guide:begin
using ActorSim.Actors;
using ActorSim.Domain.Kernel;
using ActorSim.Domain.Kvm;
using ActorSim.Domain.Mm;
using ActorSim.Domain.Simulation;
using ActorSim.Domain.Stage2;
using ActorSim.Domain.Vfio;
using Akka.TestKit.Xunit2;

namespace ActorSim.Actors.Tests;

/// <summary>A GPU's BAR in a VM, through the actors: the mm, VFIO, KVM, the fault batcher, a vCPU and
/// the invariant checker, with the in-memory journal (SimHost.BaseConfig).</summary>
public class GuideExampleTests() : TestKit(SimHost.BaseConfig(deterministic: false))
{
    private const ulong MiB = 1UL << 20;
    private const ulong BarGpa = 0x80_0000_0000;

    /// <summary>The actors of one VMM: a vfio-pci GPU with a 16 MiB prefetchable BAR 0, and one VM.</summary>
    private Task<SimHost> Start(string run, string kernel) => SimHost.StartAsync(Sys, run, KernelPolicy.Of(kernel),
        [DeviceLayout.Build("gpu0", VfioDriver.VfioPci, 0, [new RegionSpec(0, 16 * MiB, BarType.Mem64, Prefetchable: true)])],
        [KvmVm.Create("vm1")]);

    /// <summary>mmap BAR 0 (vfio_pci_core_mmap), make it memslot 1 (KVM_SET_USER_MEMORY_REGION), and have
    /// vCPU 0 write to its second page: a stage-2 fault that user_mem_abort decides.</summary>
    private static async Task<AccessResult> WriteToTheBar(SimHost host)
    {
        var mmap = await host.Ask<VfioMmapResult>(host.Device("gpu0"), new VfioMmapRegion(0, 0, 16 * MiB, Shared: true, Prot.Read | Prot.Write, FixedHva: null));
        Assert.Equal(Errno.None, mmap.Errno);
        var slot = await host.Ask<KvmResult>(host.Vm("vm1"), new KvmSetMemslot(1, MemslotFlags.None, BarGpa, 16 * MiB, mmap.Hva));
        Assert.Equal(Errno.None, slot.Errno);
        var done = await host.Ask<VcpuAccessDone>(host.Vcpu("vm1", 0), new VcpuRunAccess(BarGpa + 0x1000, AccessOp.Write));
        return done.Result;
    }

    private static async Task<MemType?> Stage2Type(SimHost host, ulong gpa) =>
        (await host.Ask<KvmLeaf>(host.Vm("vm1"), new KvmGetLeaf(gpa))).Leaf is { } leaf && MemAttr.TypeOf(leaf.MemAttr, host.Policy.Cpu.Fwb) is { } t
            ? MemAttr.MemTypeOf(t) : null;

    [Theory]
    [InlineData("6.8", MemType.DeviceNGnRE)] // before VM_ALLOW_ANY_UNCACHED
    [InlineData("6.9", MemType.NormalNC)]    // the BAR's VMA has it: device memory may be Normal-NC
    public async Task A_write_to_a_BAR_maps_it_with_the_kernels_memory_type(string kernel, MemType expected)
    {
        var host = await Start($"guide-{kernel}", kernel);
        var result = await WriteToTheBar(host);
        Assert.Equal(FaultResult.Mapped, result.Outcome.Result);
        Assert.NotNull(result.Decision); // every input user_mem_abort read, and what came out
        Assert.Equal(expected, await Stage2Type(host, BarGpa + 0x1000));
        Assert.Empty((await host.Ask<Violations>(host.Checker, new GetViolations())).Items);
    }

    [Fact]
    public async Task Disabling_the_devices_memory_zaps_the_leaf_and_the_next_access_fails_with_EFAULT()
    {
        var host = await Start("guide-zap", "6.9");
        await WriteToTheBar(host);
        // PCI_COMMAND.MEMORY off: VFIO zaps its BAR mappings through the mm, whose MMU notifier unmaps stage 2.
        Assert.Equal(Errno.None, (await host.Ask<VfioResult>(host.Device("gpu0"), new VfioSetMemory(false))).Errno);
        Assert.Null(await Stage2Type(host, BarGpa + 0x1000));
        var again = await host.Ask<VcpuAccessDone>(host.Vcpu("vm1", 0), new VcpuRunAccess(BarGpa + 0x1000, AccessOp.Read));
        // The fault handler answers SIGBUS for a disabled BAR; KVM_RUN returns -EFAULT to the VMM.
        Assert.Equal((FaultResult.Error, Errno.EFAULT), (again.Result.Outcome.Result, again.Result.Outcome.Errno));
        Assert.Empty((await host.Ask<Violations>(host.Checker, new GetViolations())).Items);
    }
}
// guide:end

public class GuideIsTheExampleTests
{
    [Fact]
    public void The_guides_example_is_this_file()
    {
        var dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "ActorSim.sln"))) dir = Path.GetDirectoryName(dir)!;
        var source = File.ReadAllText(Path.Combine(dir, "tests", "ActorSim.Actors.Tests", "GuideExampleTests.cs")).ReplaceLineEndings("\n");
        var start = source.IndexOf("// guide:begin\n", StringComparison.Ordinal) + "// guide:begin\n".Length;
        var example = source[start..source.IndexOf("// guide:end\n", start, StringComparison.Ordinal)];
        var guide = File.ReadAllText(Path.Combine(dir, "docs", "testkit.md")).ReplaceLineEndings("\n");
        Assert.Contains("```csharp\n" + example + "```", guide);
    }
}
