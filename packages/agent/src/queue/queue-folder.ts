import { FleetwardError } from '@fleetward/protocol';
import type { QueueFile, QueueFileSystem, QueuePathInfo } from './queue-file-system.js';

/**
 * Creates the queue folder (0700) if missing and returns its real path. Anyone who can write to
 * the folder could plant messages that the device would publish under its own identity, or
 * replace the log: such a folder is refused, as ssh refuses a writable ~/.ssh.
 */
export async function prepareQueueFolder(fs: QueueFileSystem, directory: string): Promise<string> {
  const path = await fs.makeDirectory(directory).catch((error: unknown) => {
    throw new FleetwardError('FW_ERR_QUEUE_UNAVAILABLE', `Cannot create the queue folder ${directory}`, { path: directory }, { cause: error });
  });
  const info = await fs.describe(path).catch((error: unknown) => {
    throw new FleetwardError('FW_ERR_QUEUE_UNAVAILABLE', `Cannot read the queue folder ${path}`, { path }, { cause: error });
  });
  if (!info.isDirectory) throw new FleetwardError('FW_ERR_CONFIG_INVALID', `The queue folder ${path} is not a folder`, { path });
  checkOwner(path, info);
  if ((info.mode & 0o022) !== 0) {
    const mode = `0${info.mode.toString(8).padStart(3, '0')}`;
    throw new FleetwardError('FW_ERR_HOME_INSECURE', `The queue folder ${path} can be written by others (mode ${mode}); fix it with: chmod 700 ${path}`, { path, mode });
  }
  return path;
}

/** Opens (or creates, 0600) the log: a regular file of the agent's user, never through a symbolic link. */
export async function openQueueLog(fs: QueueFileSystem, path: string): Promise<QueueFile> {
  let file: QueueFile;
  try {
    file = await fs.openFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw new FleetwardError('FW_ERR_HOME_INSECURE', `The queue log ${path} is a symbolic link; refusing to use it`, { path });
    throw error;
  }
  try {
    const info = await file.info();
    if (!info.isFile) throw new FleetwardError('FW_ERR_HOME_INSECURE', `The queue log ${path} is not a regular file`, { path });
    checkOwner(path, info);
    // Telemetry can be personal data: the log is the owner's alone even if someone loosened it.
    if ((info.mode & 0o077) !== 0) await file.restrictMode();
    return file;
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

function checkOwner(path: string, info: QueuePathInfo): void {
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new FleetwardError('FW_ERR_HOME_INSECURE', `${path} belongs to uid ${info.uid}, not to the agent's user (uid ${uid})`, { path, owner: info.uid });
  }
}
