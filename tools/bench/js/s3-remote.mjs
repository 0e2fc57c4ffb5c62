// The S3 side of the PowerSync JS peer: a RemoteStorageAdapter (uploadFile / downloadFile /
// deleteFile, the interface of @powersync/common's attachments) on @aws-sdk/client-s3, as a
// user of the JS SDK would write it. Objects are named `<prefix><attachment.filename>`.

import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';

/** The server of `cargo xtask bench`, read from ATTACHMENTS_TEST_S3_* as the Rust side does. */
export function s3ConfigFromEnv() {
  const read = (name) => {
    const value = process.env[`ATTACHMENTS_TEST_S3_${name}`];
    return value === undefined || value === '' ? undefined : value;
  };
  const endpoint = read('ENDPOINT');
  const bucket = read('BUCKET');
  const accessKeyId = read('ACCESS_KEY');
  const secretAccessKey = read('SECRET_KEY');
  if (!endpoint || !bucket || !accessKeyId || !secretAccessKey) {
    throw new Error('ATTACHMENTS_TEST_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY must be set');
  }
  return { endpoint, bucket, accessKeyId, secretAccessKey, region: read('REGION') ?? 'us-east-1' };
}

export class S3RemoteStorageAdapter {
  constructor(config, prefix) {
    this.bucket = config.bucket;
    this.prefix = prefix;
    this.client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: true,
      credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
    });
  }

  async createBucketIfMissing() {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  key(attachment) {
    return `${this.prefix}${attachment.filename}`;
  }

  async uploadFile(fileData, attachment) {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: this.key(attachment),
        Body: new Uint8Array(fileData),
        ContentType: attachment.mediaType ?? 'application/octet-stream',
      }),
    );
  }

  async downloadFile(attachment) {
    const response = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: this.key(attachment) }),
    );
    const bytes = await response.Body.transformToByteArray();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  }

  async deleteFile(attachment) {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(attachment) }));
  }
}
