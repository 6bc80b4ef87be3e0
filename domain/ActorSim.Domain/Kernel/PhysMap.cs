namespace ActorSim.Domain.Kernel;

/// <summary>The simulated machine's physical address map. RAM (memblock memory, in the kernel's
/// linear map) is [2 GiB, 64 GiB); device MMIO lives outside it, so <c>pfn_is_map_memory</c> is false
/// for BARs, platform MMIO and carve-outs such as nvgrace-gpu device memory.</summary>
public static class PhysMap
{
    public const ulong RamStart = 0x8000_0000UL;
    public const ulong RamEnd = 0x10_0000_0000UL;
    /// <summary>vfio-platform MMIO window, 4 GiB per device.</summary>
    public const ulong PlatformMmioBase = 0x40_0000_0000UL;
    /// <summary>PCI 64-bit prefetchable/non-prefetchable window.</summary>
    public const ulong PciMmioBase = 0x80_0000_0000UL;
    /// <summary>Coherent device memory of nvgrace-gpu devices (not in the linear map: the host kernel
    /// does not online it).</summary>
    public const ulong NvgraceMemBase = 0x400_0000_0000UL;
    /// <summary>The host GIC's virtual CPU interface, GICV (kvm_vgic_global_state.vcpu_base, from the
    /// firmware), below RAM [U: Juno's GIC-400 has it at 0x2c06f000; any page-aligned MMIO address will do].</summary>
    public const ulong GicvBase = 0x2c06_0000UL;

    public static ulong RamStartPfn => RamStart >> PageGeometry.PageShift;

    /// <summary>pfn_is_map_memory(pfn): RAM in the linear map.</summary>
    public static bool PfnIsMapMemory(ulong pfn)
    {
        var pa = pfn << PageGeometry.PageShift;
        return pa >= RamStart && pa < RamEnd;
    }
}
