/**
 * The daemon's exit code when the update client reboots into a new slot (or back to the old one):
 * EX_TEMPFAIL from sysexits.h. systemd's `Restart=on-failure` starts the agent again; it then boots
 * the slot the state file names. In a module of its own so the daemon can name it without loading
 * the update client, which an agent with updates off never uses.
 */
export const REBOOT_EXIT_CODE = 75;
